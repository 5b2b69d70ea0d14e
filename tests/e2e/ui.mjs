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

// ------------------------------------------------------------------------------------------

async function main() {
  console.log(`1..${steps.length}`);
  let failed = 0;
  try {
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
        '--disable-background-networking', '--disable-component-update', '--disable-sync'],
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
