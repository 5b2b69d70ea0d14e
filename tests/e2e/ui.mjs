// The web UI in a real browser: Debian's Chromium driven by playwright-core (never a
// downloaded browser), against a running llama-swap whose models are fake upstreams.
//
//   BASE_URL=http://127.0.0.1:PORT [API_KEY=k] [MODEL_LOAD=alpha] [MODEL_CHAT=beta] [MODEL_BROKEN=x]
//   [EXPECT_TOKENS=30 TOKEN_TEXT=hi] [SCREENSHOT_DIR=dir] [CHROMIUM=/usr/bin/chromium] node tests/e2e/ui.mjs
//
// MODEL_LOAD should take a moment to load (e.g. --load-delay-ms 500) so that "starting" is
// seen; MODEL_BROKEN, when given, must fail to start (its errors must be shown); MODEL_CHAT
// should generate slowly (e.g. 30 tokens at 15 tps) so that the streamed
// text can be seen growing. Prints TAP; exits 1 when a step fails.
//
// EXTENDED=1 adds the richer pages and actions: a model's details (facts, its own live log,
// its requests), markdown and code highlighting (MODEL_MD answers markdown with a fenced
// Python block), a stream cut midway (MODEL_CRASH dies after a few tokens), Activity's
// statistics, charts, export and in-flight cancel (MODEL_SLOW streams for seconds), captures,
// Performance, About and licenses, the theme toggle and a 390 px wide layout.
// MODE=empty instead checks a daemon without models (the page says what to edit and how to
// reload) opened at a name other than localhost (the open-API banner); BASE_URL then uses
// the host name ui.test, which the browser maps to 127.0.0.1.

import { chromium } from 'playwright-core';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const BASE_URL = (process.env.BASE_URL || '').replace(/\/+$/, '');
const API_KEY = process.env.API_KEY || '';
const MODEL_LOAD = process.env.MODEL_LOAD || 'alpha';
const MODEL_CHAT = process.env.MODEL_CHAT || 'beta';
const MODEL_BROKEN = process.env.MODEL_BROKEN || ''; // optional: a model whose start fails
const EXPECT_TOKENS = process.env.EXPECT_TOKENS ? Number(process.env.EXPECT_TOKENS) : 0;
const TOKEN_TEXT = process.env.TOKEN_TEXT || 'hi'; // the text of each token (fake-upstream --respond)
const countTokens = (text) => text.split(TOKEN_TEXT).length - 1;
const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || path.join(os.tmpdir(), 'llama-swap-ui-screenshots');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const T = Number(process.env.UI_TIMEOUT_MS || 20000); // every wait's limit
const EXTENDED = process.env.EXTENDED === '1';
const MODE = process.env.MODE || '';
const MODEL_MD = process.env.MODEL_MD || 'md';
const MODEL_CRASH = process.env.MODEL_CRASH || 'crash';
const MODEL_SLOW = process.env.MODEL_SLOW || 'slow';
const MODEL_VOICE = process.env.MODEL_VOICE || 'voice'; // capabilities: audio in and out

if (!BASE_URL) {
  console.log('Bail out! BASE_URL is not set');
  process.exit(2);
}
fs.mkdirSync(SCREENSHOT_DIR, { recursive: true });

const tid = (id) => `[data-testid="${id}"]`;
const row = (model) => `tr[data-testid="model-row"][data-model="${model}"]`;

function diag(text) {
  for (const line of String(text).split('\n')) console.log('# ' + line);
}

function assert(cond, message) {
  if (!cond) throw new Error('assertion failed: ' + message);
}

// A request from the test itself (not the page), e.g. to cause a log line.
async function direct(pathname, init = {}) {
  const headers = Object.assign({}, init.headers || {});
  if (API_KEY) headers.Authorization = 'Bearer ' + API_KEY;
  return fetch(BASE_URL + pathname, Object.assign({}, init, { headers }));
}

const steps = [];
const step = (name, fn) => steps.push({ name, fn });

let browser;
let page;
const pageErrors = [];
const consoleErrors = [];

async function shot(name) {
  const file = path.join(SCREENSHOT_DIR, name);
  await page.screenshot({ path: file, fullPage: true });
  diag('screenshot: ' + file);
}

async function waitState(model, states, timeout = T) {
  await page.waitForFunction(([sel, want]) => {
    const b = document.querySelector(sel);
    return b && want.includes(b.dataset.state);
  }, [`${row(model)} ${tid('model-state')}`, states], { timeout });
}

// Records every value a state badge takes from now on (a MutationObserver in the page; the
// old values of the records, so that two changes in one task are both seen).
async function recordStates(model) {
  await page.evaluate((sel) => {
    const badge = document.querySelector(sel);
    window.__oldStates = [];
    const mo = new MutationObserver((records) => {
      for (const r of records) window.__oldStates.push(r.oldValue);
    });
    mo.observe(badge, { attributes: true, attributeFilter: ['data-state'], attributeOldValue: true });
    window.__states = () => {
      const all = [...window.__oldStates, badge.dataset.state];
      return all.filter((s, i) => i === 0 || s !== all[i - 1]);
    };
  }, `${row(model)} ${tid('model-state')}`);
}

// Records the assistant output's length and the status at every change of the conversation.
async function recordOutput() {
  await page.evaluate(() => {
    window.__samples = [];
    const conv = document.querySelector('[data-testid="pg-conversation"]');
    const status = document.querySelector('[data-testid="pg-status"]');
    const take = () => {
      const out = document.querySelector('[data-testid="pg-output"]');
      window.__samples.push({
        t: performance.now(),
        len: out ? out.textContent.length : 0,
        state: status.dataset.state,
      });
    };
    const mo = new MutationObserver(take);
    mo.observe(conv, { subtree: true, childList: true, characterData: true });
    mo.observe(status, { attributes: true, attributeFilter: ['data-state'] });
  });
}

async function waitPgStatus(states, timeout = T) {
  await page.waitForFunction((want) => {
    const s = document.querySelector('[data-testid="pg-status"]');
    return want.includes(s.dataset.state);
  }, states, { timeout });
  return page.getAttribute(tid('pg-status'), 'data-state');
}

// ------------------------------------------------------------------------------------------
// The steps

step('open /ui/: the page loads with its four pages in the navigation', async () => {
  const res = await page.goto(BASE_URL + '/ui/', { waitUntil: 'domcontentloaded', timeout: T });
  assert(res && res.status() === 200, 'GET /ui/ answered ' + (res && res.status()));
  for (const p of ['models', 'logs', 'activity', 'playground']) {
    await page.locator(tid('nav-' + p)).waitFor({ state: 'visible', timeout: T });
  }
  await page.locator(tid('page-models')).waitFor({ state: 'visible', timeout: T });
  assert(/llama-swap/.test(await page.title()), 'title');
});

if (API_KEY) {
  step('API key: the key form appears on 401, a wrong key is refused, the right one is kept', async () => {
    const dialog = page.locator(tid('key-dialog'));
    await dialog.waitFor({ state: 'visible', timeout: T });
    assert(await page.getAttribute(tid('conn'), 'data-state') !== 'connected', 'not connected without a key');
    assert(await page.getAttribute(tid('key-input'), 'type') === 'password', 'the key input is a password field');
    await shot('key.png');
    await page.fill(tid('key-input'), 'not-the-key');
    await page.click(tid('key-save'));
    await page.waitForFunction(() => {
      const d = document.querySelector('[data-testid="key-dialog"]');
      const m = document.querySelector('[data-testid="key-msg"]');
      return d.open && /refused/.test(m.textContent);
    }, null, { timeout: T });
    await page.fill(tid('key-input'), API_KEY);
    await page.click(tid('key-save'));
    await dialog.waitFor({ state: 'hidden', timeout: T });
    await page.waitForSelector(`${tid('conn')}[data-state="connected"]`, { timeout: T });
    const stored = await page.evaluate(() => localStorage.getItem('llama-swap.apiKey'));
    assert(stored === API_KEY, 'the key is kept in localStorage');
  });
} else {
  step('no API key needed: the events stream connects and no key form is shown', async () => {
    await page.waitForSelector(`${tid('conn')}[data-state="connected"]`, { timeout: T });
    assert(!(await page.locator(tid('key-dialog')).isVisible()), 'no key dialog');
  });
}

step('Models: every model is listed with its state from /api/events', async () => {
  for (const m of [MODEL_LOAD, MODEL_CHAT]) {
    await page.locator(row(m)).waitFor({ state: 'visible', timeout: T });
  }
  await waitState(MODEL_LOAD, ['stopped']);
  const id = await page.textContent(`${row(MODEL_LOAD)} code.id`);
  assert(id === MODEL_LOAD, 'the id cell shows ' + id);
});

step('Models: Load shows starting, then ready', async () => {
  await recordStates(MODEL_LOAD);
  await page.click(`${row(MODEL_LOAD)} ${tid('model-load')}`);
  await waitState(MODEL_LOAD, ['ready']);
  const seen = await page.evaluate(() => window.__states());
  diag('states seen: ' + seen.join(' -> '));
  assert(seen.includes('starting') && seen.indexOf('starting') < seen.indexOf('ready'),
    'starting came before ready: ' + seen.join(','));
  // The Load request ends once the model is ready: its button settles to disabled "Load".
  await page.waitForFunction((sel) => {
    const b = document.querySelector(sel);
    return b.textContent === 'Load' && b.disabled;
  }, `${row(MODEL_LOAD)} ${tid('model-load')}`, { timeout: T });
  const msg = (await page.textContent(`${row(MODEL_LOAD)} ${tid('model-msg')}`)).trim();
  assert(msg === '', 'no error message: ' + msg);
  await shot('models.png');
});

if (EXTENDED && !MODE) {
  step('Models: the details of a running model (facts, its live log, its requests)', async () => {
    await page.click(`${row(MODEL_LOAD)} ${tid('model-details-link')}`);
    await page.locator(tid('model-details')).waitFor({ state: 'visible', timeout: T });
    assert(await page.textContent(tid('details-title')) === MODEL_LOAD, 'the title names the model');
    await page.waitForSelector(`${tid('details-state')}[data-state="ready"]`, { timeout: T });
    // /running's facts: pid, command, upstream address
    await page.waitForSelector(`${tid('details-facts')} dd[data-fact="pid"]`, { timeout: T });
    const facts = await page.$$eval(`${tid('details-facts')} dd`, (dds) => Object.fromEntries(dds.map((d) => [d.dataset.fact, d.textContent])));
    diag('facts: ' + JSON.stringify(facts));
    assert(/^\d+$/.test(facts.pid), 'pid: ' + facts.pid);
    assert(/fake-upstream/.test(facts.cmd || ''), 'command: ' + facts.cmd);
    assert(/^https?:\/\/[\w.:[\]-]+:\d+/.test(facts.proxy || ''), 'upstream: ' + facts.proxy);
    assert(/s/.test(facts.load || ''), 'load time: ' + facts.load);
    // its own log, live: the history says it was loaded
    await page.waitForFunction((m) => document.querySelector('[data-testid="details-logs"]').textContent
      .includes('loading model ' + m), MODEL_LOAD, { timeout: T });
    await page.waitForSelector(`${tid('details-log-state')}[data-state="live"]`, { timeout: T });
    await shot('model-details.png');
    // its requests (a request made now shows up)
    const r = await direct('/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL_LOAD, messages: [{ role: 'user', content: 'details' }] }) });
    assert(r.status === 200, 'chat answered ' + r.status);
    await r.text();
    await page.click(tid('details-tab-activity'));
    await page.waitForSelector(`${tid('details-activity-row')}`, { timeout: T });
    assert(await page.isHidden(tid('details-logs')), 'the log is hidden on the Activity tab');
    await page.click(tid('details-tab-logs'));
    await page.click(tid('details-back'));
    await page.locator(tid('models-table')).waitFor({ state: 'visible', timeout: T });
  });
}

step('Models: Unload stops the model', async () => {
  await page.click(`${row(MODEL_LOAD)} ${tid('model-unload')}`);
  await waitState(MODEL_LOAD, ['stopped']);
});

if (MODEL_BROKEN) {
  step('Models: a model that fails to start shows the error and the failed state', async () => {
    await page.click(`${row(MODEL_BROKEN)} ${tid('model-load')}`);
    await page.waitForFunction((sel) => /Load failed: \S/.test(document.querySelector(sel).textContent),
      `${row(MODEL_BROKEN)} ${tid('model-msg')}`, { timeout: T });
    diag('shown: ' + await page.textContent(`${row(MODEL_BROKEN)} ${tid('model-msg')}`));
    await waitState(MODEL_BROKEN, ['failed']);
  });
}

step('Logs: a source is picked and a new line appears live', async () => {
  await page.click(tid('nav-logs'));
  await page.locator(tid('page-logs')).waitFor({ state: 'visible', timeout: T });
  // One model's own lines first: its history says it was loaded.
  await page.selectOption(tid('log-source'), MODEL_LOAD);
  await page.waitForFunction((m) => document.querySelector('[data-testid="log-view"]').textContent
    .includes('loading model ' + m), MODEL_LOAD, { timeout: T });
  // Then the daemon's log: a request made now must show up in the access log, live.
  await page.selectOption(tid('log-source'), 'proxy');
  await page.waitForSelector(`${tid('log-state')}[data-state="live"]`, { timeout: T });
  await page.waitForFunction(() => document.querySelector('[data-testid="log-view"]').textContent
    .includes('listening on'), null, { timeout: T });
  const marker = 'ui-log-marker-' + Math.random().toString(36).slice(2);
  const r = await direct('/health?' + marker);
  assert(r.status === 200, '/health answered ' + r.status);
  await page.waitForFunction((mk) => document.querySelector('[data-testid="log-view"]').textContent
    .includes(mk), marker, { timeout: T });
  const n = await page.locator(`${tid('log-view')} .line`).count();
  assert(n > 1 && n <= 2000, 'log lines in the view: ' + n);
  await shot('logs.png');
});

step('Playground: a reply streams in piece by piece', async () => {
  await page.click(tid('nav-playground'));
  await page.locator(tid('page-playground')).waitFor({ state: 'visible', timeout: T });
  await page.waitForSelector(`${tid('pg-model')} option[value="${MODEL_CHAT}"]`, { state: 'attached', timeout: T });
  await page.selectOption(tid('pg-model'), MODEL_CHAT);
  await page.fill(tid('pg-input'), 'Hello from the browser test');
  await recordOutput();
  await page.click(tid('pg-send'));
  const end = await waitPgStatus(['done', 'error', 'stopped'], T + 15000);
  const err = (await page.textContent(tid('pg-error'))).trim();
  assert(end === 'done', 'the reply ended as ' + end + (err ? ': ' + err : ''));
  const text = await page.textContent(tid('pg-output'));
  const samples = await page.evaluate(() => window.__samples);
  const partial = new Set(samples.filter((s) => s.state === 'streaming' && s.len > 0 && s.len < text.length)
    .map((s) => s.len));
  diag(`reply: ${text.length} chars; ${partial.size} partial lengths seen while streaming; status: ` +
    await page.textContent(tid('pg-status')));
  assert(partial.size >= 3, 'the text grew while streaming (partial lengths: ' + [...partial].join(',') + ')');
  if (EXPECT_TOKENS) {
    const n = countTokens(text);
    assert(n === EXPECT_TOKENS, `${EXPECT_TOKENS} tokens expected, got ${n}: ${text}`);
  } else {
    assert(text.trim().length > 0, 'some text');
  }
  const user = await page.textContent(`${tid('pg-conversation')} [data-role="user"] .msg-text`);
  assert(user === 'Hello from the browser test', 'the question is shown: ' + user);
  await shot('playground.png');
});

step('Playground: Stop aborts a reply midway', async () => {
  await page.fill(tid('pg-input'), 'And again, but I will stop you');
  await page.click(tid('pg-send'));
  await page.waitForFunction(() => {
    const o = document.querySelector('[data-testid="pg-output"]');
    return o && o.textContent.length > 0;
  }, null, { timeout: T });
  await page.click(tid('pg-stop'));
  const end = await waitPgStatus(['done', 'error', 'stopped']);
  assert(end === 'stopped', 'ended as ' + end);
  const text = await page.textContent(tid('pg-output'));
  if (EXPECT_TOKENS) {
    const n = countTokens(text);
    assert(n > 0 && n < EXPECT_TOKENS, `stopped before the end (${n} of ${EXPECT_TOKENS} tokens)`);
  }
  assert(await page.isEnabled(tid('pg-send')), 'Send is enabled again');
  assert(await page.isDisabled(tid('pg-stop')), 'Stop is disabled again');
});

if (MODEL_BROKEN) {
  step('Playground: an API error is shown as such', async () => {
    await page.selectOption(tid('pg-model'), MODEL_BROKEN);
    await page.fill(tid('pg-input'), 'Will you start?');
    await page.click(tid('pg-send'));
    const end = await waitPgStatus(['done', 'error', 'stopped']);
    assert(end === 'error', 'ended as ' + end);
    const err = (await page.textContent(tid('pg-error'))).trim();
    diag('shown: ' + err);
    assert(await page.isVisible(tid('pg-error')) && err.length > 0, 'the error is visible');
    assert(await page.isEnabled(tid('pg-send')), 'Send is enabled again');
    assert(await page.inputValue(tid('pg-input')) === '', 'the input was taken');
  });
}

if (EXTENDED && !MODE) {
  step('Playground: markdown is rendered and code highlighted (with system prompt and parameters)', async () => {
    await page.waitForSelector(`${tid('pg-model')} option[value="${MODEL_MD}"]`, { state: 'attached', timeout: T });
    await page.selectOption(tid('pg-model'), MODEL_MD);
    await page.click('#pg-settings summary');
    await page.fill(tid('pg-system'), 'You answer in markdown.');
    await page.fill(tid('pg-temperature'), '0.2');
    await page.fill(tid('pg-max-tokens'), '64');
    await page.fill(tid('pg-top-p'), '0.9');
    await page.fill(tid('pg-input'), 'Show me some code');
    await page.click(tid('pg-send'));
    const end = await waitPgStatus(['done', 'error', 'stopped']);
    assert(end === 'done', 'ended as ' + end + ': ' + await page.textContent(tid('pg-error')));
    const out = tid('pg-output');
    assert(await page.locator(`${out} strong`).count() === 1, 'bold text became <strong>');
    assert((await page.textContent(`${out} strong`)) === 'bold', 'its text');
    const code = page.locator(`${out} pre code`);
    assert(await code.count() === 1, 'a code block');
    const spans = await page.locator(`${out} pre code span[class^="hljs-"]`).count();
    diag('highlighted tokens: ' + spans);
    assert(spans >= 2, 'the code is highlighted (hljs spans: ' + spans + ')');
    assert(/def f\(x\):\s+return x \+ 1/.test(await code.textContent()), 'the code text is intact');
    assert(await page.locator(`${out} script, ${out} img`).count() === 0, 'nothing active');
    await shot('playground-markdown.png');
  });

  step('Playground: a stream cut midway says so, with the cause', async () => {
    await page.click(tid('pg-clear'));
    await page.selectOption(tid('pg-model'), MODEL_CRASH);
    await page.fill(tid('pg-input'), 'Crash, please');
    await page.click(tid('pg-send'));
    const end = await waitPgStatus(['done', 'error', 'stopped'], T + 10000);
    assert(end === 'error', 'ended as ' + end);
    const err = (await page.textContent(tid('pg-error'))).trim();
    diag('shown: ' + err);
    assert(/^stream cut after [1-9]\d* tokens: /.test(err), 'the cut and the tokens before it: ' + err);
    assert(err !== 'network error' && err.length > 40, 'a cause, not just "network error"');
    await shot('playground-cut.png');
  });
}

if (EXTENDED && !MODE) {
  step('Playground: speech and transcription with the model whose capabilities name them', async () => {
    await page.click(tid('pg-mode-speech'));
    await page.locator(tid('pg-speech')).waitFor({ state: 'visible', timeout: T });
    assert(await page.isHidden(tid('pg-chat')), 'the chat is hidden');
    const first = await page.$eval(tid('pg-model'), (s) => s.options[0] && s.options[0].value);
    assert(first === MODEL_VOICE, 'the model with audio output comes first: ' + first);
    await page.selectOption(tid('pg-model'), MODEL_VOICE);
    await page.fill(tid('sp-input'), 'Hello there');
    await page.click(tid('sp-send'));
    await page.waitForFunction(() => /^done/.test(document.querySelector('[data-testid="sp-status"]').textContent), null, { timeout: T });
    const src = await page.getAttribute(tid('sp-audio'), 'src');
    assert(/^blob:/.test(src || '') && await page.isVisible(tid('sp-audio')), 'an audio player with the answer: ' + src);
    await page.click(tid('pg-mode-transcribe'));
    await page.selectOption(tid('pg-model'), MODEL_VOICE);
    await page.setInputFiles(tid('tr-file'), { name: 'hello.wav', mimeType: 'audio/wav', buffer: Buffer.alloc(1234, 7) });
    await page.click(tid('tr-send'));
    await page.waitForFunction(() => /^(done|failed)/.test(document.querySelector('[data-testid="tr-status"]').textContent), null, { timeout: T });
    const text = await page.textContent(tid('tr-output'));
    diag('transcription: ' + text + ' (' + await page.textContent(tid('tr-status')) + ')');
    const m = /(\d+) bytes/.exec(text || '');
    assert(m && Number(m[1]) >= 1234, 'the upload (1234 bytes in a multipart body) reached the model');
    await shot('playground-transcribe.png');
    await page.click(tid('pg-mode-chat'));
  });
}

step('Activity: the playground request is listed with its model, status and tokens', async () => {
  await page.click(tid('nav-activity'));
  await page.locator(tid('page-activity')).waitFor({ state: 'visible', timeout: T });
  const found = await page.waitForFunction(([model, tokens]) => {
    for (const tr of document.querySelectorAll('tr[data-testid="activity-row"]')) {
      const cell = (c) => tr.querySelector(`td[data-col="${c}"]`).textContent;
      const gen = Number(cell('generated_tokens'));
      if (tr.dataset.model === model && cell('path').includes('/v1/chat/completions') &&
          cell('status') === '200' && Number(cell('prompt_tokens')) > 0 &&
          (tokens ? gen === tokens : gen > 0)) {
        return {
          duration: cell('duration'), wait: cell('wait'), upstream: cell('upstream'),
          prompt: cell('prompt_tokens'), gen: cell('generated_tokens'), cached: cell('cached_tokens'),
          pps: cell('prompt_per_second'), tps: cell('tokens_per_second'),
        };
      }
    }
    return null;
  }, [MODEL_CHAT, EXPECT_TOKENS], { timeout: T });
  diag('activity row: ' + JSON.stringify(await found.jsonValue()));
  // The reply stopped midway is marked as cut by the client, not shown as a plain 200.
  await page.waitForFunction((model) => [...document.querySelectorAll(
    'tr[data-testid="activity-row"] td[data-col="status"][data-outcome="client_closed"]')]
    .some((td) => td.closest('tr').dataset.model === model && /client closed/.test(td.textContent)),
  MODEL_CHAT, { timeout: T });
  // The model filter narrows the table to one model.
  await page.selectOption(tid('activity-model'), MODEL_CHAT);
  await page.waitForFunction((model) => {
    const rows = [...document.querySelectorAll('tr[data-testid="activity-row"]')];
    return rows.length > 0 && rows.every((r) => r.dataset.model === model);
  }, MODEL_CHAT, { timeout: T });
  const pageText = await page.textContent(tid('activity-page'));
  assert(/page 1 of \d+/.test(pageText), 'paging shows: ' + pageText);
  await page.selectOption(tid('activity-model'), '');
  await shot('activity.png');
});

if (EXTENDED && !MODE) {
  step('Activity: statistics, histograms, and export as CSV and JSON', async () => {
    await page.waitForFunction(() => {
      const c = document.querySelector('[data-testid="activity-stats"] [data-stat="requests"] .value');
      return c && Number(c.textContent.replace(/,/g, '')) > 0;
    }, null, { timeout: T });
    const note = await page.textContent(tid('activity-stats-note'));
    diag('stats: ' + note);
    const charts = await page.evaluate(() => ['chart-pps', 'chart-tps'].map((id) => !!(window.Chart && window.Chart.getChart(id))));
    assert(charts.every(Boolean), 'both histograms are drawn by Chart.js: ' + charts);
    const [csv] = await Promise.all([page.waitForEvent('download', { timeout: T }), page.click(tid('export-csv'))]);
    const csvText = fs.readFileSync(await csv.path(), 'utf8');
    const lines = csvText.trim().split(/\r?\n/);
    diag('CSV: ' + csv.suggestedFilename() + ', ' + lines.length + ' lines; ' + lines[0]);
    assert(/\.csv$/.test(csv.suggestedFilename()), 'a .csv file');
    assert(lines[0].startsWith('id,time,model,'), 'the header');
    assert(lines.length >= 3 && lines.some((l) => l.includes(MODEL_CHAT) && l.includes('/v1/chat/completions')), 'the chat requests');
    const [json] = await Promise.all([page.waitForEvent('download', { timeout: T }), page.click(tid('export-json'))]);
    const records = JSON.parse(fs.readFileSync(await json.path(), 'utf8'));
    assert(Array.isArray(records) && records.length === lines.length - 1, 'as many JSON records (' + records.length + ') as CSV rows');
    await shot('activity-stats.png');
  });

  step('Activity: a request in flight is listed and cancelled', async () => {
    const can = (await direct('/api/inflight')).status;
    const ctrl = new AbortController();
    const pending = direct('/v1/chat/completions', { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model: MODEL_SLOW, stream: true, messages: [{ role: 'user', content: 'take your time' }] }),
      signal: ctrl.signal }).then(async (r) => { try { return { status: r.status, text: await r.text() }; } catch (e) { return { status: r.status, cut: String(e) }; } });
    try {
      await page.waitForSelector(`tr[data-testid="inflight-row"][data-model="${MODEL_SLOW}"]`, { timeout: T });
      if (can === 404) {
        diag('SKIP cancel: the daemon has no /api/inflight (the API is missing); the row was listed');
        assert(await page.isVisible(tid('inflight-note')), 'the page says cancelling is not possible');
        return;
      }
      await page.waitForSelector(`tr[data-testid="inflight-row"][data-model="${MODEL_SLOW}"] ${tid('inflight-cancel')}`, { timeout: T });
      await shot('activity-inflight.png');
      await page.click(`tr[data-testid="inflight-row"][data-model="${MODEL_SLOW}"] ${tid('inflight-cancel')}`);
      await page.waitForSelector(`tr[data-testid="inflight-row"][data-model="${MODEL_SLOW}"]`, { state: 'detached', timeout: T });
      const res = await Promise.race([pending, new Promise((r) => setTimeout(() => r(null), 5000))]);
      diag('the cancelled request: ' + JSON.stringify(res && { status: res.status, cut: res.cut, tokens: res.text && countTokens(res.text) }));
      assert(res, 'the cancelled request ended');
      assert(res.cut || countTokens(res.text || '') < 100, 'it ended before its 100 tokens');
    } finally {
      ctrl.abort();
    }
  });

  step('Activity: a capture is shown when the daemon keeps them', async () => {
    const btn = page.locator(tid('capture-view')).first();
    if (await btn.count() === 0) {
      diag('SKIP capture viewer: no request has a capture (this daemon keeps none: /api/captures is missing or captureBuffer is off)');
      return;
    }
    await btn.click();
    await page.waitForSelector(`${tid('capture-body')} pre[data-capture="req-body"]`, { timeout: T });
    diag('capture request body: ' + (await page.textContent(`${tid('capture-body')} pre[data-capture="req-body"]`)).slice(0, 120));
    await shot('capture.png');
    await page.click(tid('capture-close'));
  });

  step('Performance: host charts from /api/performance, or why there are none', async () => {
    await page.click(tid('nav-performance'));
    await page.locator(tid('page-performance')).waitFor({ state: 'visible', timeout: T });
    await page.waitForFunction(() => ['live', 'disabled', 'missing'].includes(
      document.querySelector('[data-testid="perf-state"]').dataset.state), null, { timeout: T });
    const state = await page.getAttribute(tid('perf-state'), 'data-state');
    diag('performance: ' + state + ' ' + (await page.textContent(tid('perf-msg'))));
    if (state === 'live') {
      await page.waitForFunction(() => window.Chart && window.Chart.getChart('chart-cpu') &&
        window.Chart.getChart('chart-cpu').data.datasets[0].data.length > 0, null, { timeout: T });
      assert(await page.locator(`${tid('perf-cards')} [data-stat="memory"]`).count() === 1, 'a memory card');
    } else {
      assert(await page.isVisible(tid('perf-msg')), 'the reason is shown');
    }
    await page.waitForFunction(() => window.Chart && window.Chart.getChart('chart-tps-time'), null, { timeout: T });
    await shot('performance.png');
  });

  step('About: the built-in libraries with their licenses', async () => {
    await page.click(tid('about-button'));
    await page.locator(tid('about-dialog')).waitFor({ state: 'visible', timeout: T });
    const links = await page.$$eval(`${tid('about-libs')} a`, (as) => as.map((a) => a.getAttribute('href')));
    diag('licenses: ' + links.join(', ') + '; ' + await page.textContent(tid('about-version')));
    assert(links.length === 3, 'three libraries with a license each: ' + links.join(','));
    for (const l of links) {
      const r = await fetch(BASE_URL + '/ui/' + l);
      const text = await r.text();
      assert(r.status === 200 && /(Expat|MIT|BSD)/.test(text), l + ': ' + r.status);
    }
    await page.waitForFunction(() => /llama-swap \S/.test(document.querySelector('[data-testid="about-version"]').textContent), null, { timeout: T });
    await page.click(tid('about-close'));
  });

  step('Theme: the toggle switches light and dark, and is remembered', async () => {
    await page.click(tid('nav-models'));
    const before = await page.evaluate(() => document.documentElement.dataset.theme);
    await page.click(tid('theme-toggle'));
    const after = await page.evaluate(() => document.documentElement.dataset.theme);
    assert(before !== after && ['light', 'dark'].includes(after), before + ' -> ' + after);
    const bg = async () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
    const bgAfter = await bg();
    await page.reload({ waitUntil: 'domcontentloaded' });
    await page.waitForFunction((t) => document.documentElement.dataset.theme === t, after, { timeout: T });
    assert(await bg() === bgAfter, 'the same background after a reload');
    await page.locator(row(MODEL_LOAD)).waitFor({ state: 'visible', timeout: T });
    await shot('theme-' + after + '.png');
    await page.click(tid('theme-toggle'));
    assert(await page.evaluate(() => document.documentElement.dataset.theme) === before, 'back to ' + before);
  });

  step('Narrow screen (390 px): the navigation folds behind a button, nothing overflows', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    try {
      await page.click(tid('nav-models'), { timeout: 2000 }).catch(() => {});
      await page.locator(tid('nav-toggle')).waitFor({ state: 'visible', timeout: T });
      assert(await page.isHidden(tid('nav-activity')), 'the links are folded');
      const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow <= 1, 'the page is not wider than the screen (by ' + overflow + ' px)');
      await shot('narrow-models.png');
      await page.click(tid('nav-toggle'));
      await page.locator(tid('nav-activity')).waitFor({ state: 'visible', timeout: T });
      await shot('narrow-nav.png');
      await page.click(tid('nav-activity'));
      await page.locator(tid('page-activity')).waitFor({ state: 'visible', timeout: T });
      assert(await page.isHidden(tid('nav-performance')), 'the menu closes after a choice');
      const overflow2 = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
      assert(overflow2 <= 1, 'Activity is not wider than the screen (by ' + overflow2 + ' px)');
      await page.click(tid('nav-toggle'));
      await page.click(tid('nav-playground'));
      await page.locator(tid('pg-input')).waitFor({ state: 'visible', timeout: T });
      const box = await page.locator(tid('pg-input')).boundingBox();
      assert(box && box.x >= 0 && box.x + box.width <= 391, 'the message box fits: ' + JSON.stringify(box));
      await shot('narrow-playground.png');
    } finally {
      await page.setViewportSize({ width: 1280, height: 800 });
    }
    await page.click(tid('nav-models'));
  });
}

step('Models: Unload all stops every model', async () => {
  await page.click(tid('nav-models'));
  await page.click(`${row(MODEL_LOAD)} ${tid('model-load')}`);
  await waitState(MODEL_LOAD, ['ready']);
  await page.click(tid('unload-all'));
  await waitState(MODEL_LOAD, ['stopped']);
  const states = await page.$$eval(`${tid('model-row')} ${tid('model-state')}`, (bs) => bs.map((b) => b.dataset.state));
  diag('states after Unload all: ' + states.join(','));
  assert(!states.includes('ready') && !states.includes('starting'), 'none running: ' + states.join(','));
});

step('no uncaught errors in the page', async () => {
  assert(pageErrors.length === 0, 'page errors:\n' + pageErrors.join('\n'));
});

if (MODE === 'empty') {
  steps.length = 0;
  step('no models: the page says which file to edit and how to reload', async () => {
    const res = await page.goto(BASE_URL + '/ui/', { waitUntil: 'domcontentloaded', timeout: T });
    assert(res && res.status() === 200, 'GET /ui/ answered ' + (res && res.status()));
    await page.locator(tid('models-none')).waitFor({ state: 'visible', timeout: T });
    const text = await page.textContent(tid('models-none'));
    diag('shown: ' + text.replace(/\s+/g, ' ').trim());
    assert(/config\.yaml/.test(await page.textContent(tid('config-path'))), 'the config path');
    assert(text.includes('systemctl reload llama-swap'), 'how to reload');
    assert(await page.isHidden(tid('models-empty')), 'not "waiting" any more');
  });
  step('open API: a banner advises apiKeys when the page came from another name than localhost', async () => {
    assert(new URL(BASE_URL).hostname !== '127.0.0.1', 'BASE_URL names a host other than localhost: ' + BASE_URL);
    await page.locator(tid('banner-open')).waitFor({ state: 'visible', timeout: T });
    const text = await page.textContent(tid('banner-open'));
    assert(/apiKeys/.test(text), 'it names apiKeys: ' + text);
    await shot('no-models.png');
  });
  step('a build without the libraries (their stubs): notes instead of charts, About says what to install', async () => {
    const stub = '/* not installed when this llama-swap was built: the web UI does without it */\n';
    await page.route(/\/ui\/(chart|marked|highlight)\.min\.js$/, (r) => r.fulfill({ status: 200, contentType: 'text/javascript', body: stub }));
    try {
      await page.goto(BASE_URL + '/ui/?stubs#/activity', { waitUntil: 'domcontentloaded', timeout: T }); // a new load
      await page.locator(tid('page-activity')).waitFor({ state: 'visible', timeout: T });
      await page.waitForSelector(`${tid('nochart')}`, { timeout: T });
      const note = await page.textContent(tid('nochart'));
      assert(/libjs-chart\.js/.test(note), 'the note names the package: ' + note);
      await shot('no-libraries.png');
      await page.click(tid('about-button'));
      const text = await page.textContent(tid('about-libs'));
      diag('about: ' + text);
      assert(/not built in \(install libjs-chart\.js/.test(text) && /install libjs-marked/.test(text) && /install libjs-highlight\.js/.test(text), 'what to install');
      await page.click(tid('about-close'));
    } finally {
      await page.unroute(/\/ui\/(chart|marked|highlight)\.min\.js$/);
    }
  });
  step('no uncaught errors in the page', async () => {
    assert(pageErrors.length === 0, 'page errors:\n' + pageErrors.join('\n'));
  });
}

// ------------------------------------------------------------------------------------------

async function main() {
  console.log(`1..${steps.length}`);
  let failed = 0;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync',
        // MODE=empty opens the UI as http://ui.test:PORT/ (not a loopback name)
        '--host-resolver-rules=MAP ui.test 127.0.0.1'],
      timeout: 60000,
    });
    const context = await browser.newContext({ viewport: { width: 1280, height: 800 } });
    page = await context.newPage();
    page.setDefaultTimeout(T);
    page.on('pageerror', (e) => pageErrors.push(String(e && e.stack || e)));
    page.on('console', (m) => {
      // 401s are expected before a key is entered; Chromium logs every failed resource.
      if (m.type() === 'error' && !/Failed to load resource/.test(m.text())) consoleErrors.push(m.text());
    });
  } catch (e) {
    for (let i = 0; i < steps.length; i++) {
      console.log(`not ok ${i + 1} - ${steps[i].name}`);
    }
    diag('could not start the browser: ' + (e && e.stack || e));
    if (browser) await browser.close().catch(() => {});
    process.exit(1);
  }
  try {
    for (let i = 0; i < steps.length; i++) {
      const s = steps[i];
      const t0 = Date.now();
      try {
        await s.fn();
        console.log(`ok ${i + 1} - ${s.name}`);
      } catch (e) {
        failed++;
        console.log(`not ok ${i + 1} - ${s.name}`);
        diag(String(e && e.stack || e));
        try { await shot(`failure-${i + 1}.png`); } catch (_) { /* page gone */ }
      }
      diag(`took ${((Date.now() - t0) / 1000).toFixed(2)} s`);
    }
    if (consoleErrors.length) diag('console errors:\n' + consoleErrors.join('\n'));
  } finally {
    await browser.close().catch(() => {});
  }
  process.exit(failed ? 1 : 0);
}

main().catch((e) => {
  diag(String(e && e.stack || e));
  if (browser) browser.close().catch(() => {});
  process.exit(1);
});
