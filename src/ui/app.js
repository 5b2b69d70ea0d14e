// llama-swap web UI: vanilla ES2020, no dependencies, no build step.
// Every string from the network goes into the page as text (textContent / Text nodes), never
// as HTML. Every URL is relative to where the UI is mounted, so it works behind a proxy
// under a sub-path (/llama/ui/ talks to /llama/api/...).
'use strict';

(() => {
  // ---------------------------------------------------------------------------------------
  // Small helpers

  const $ = (id) => document.getElementById(id);

  // el('td', {class: 'num', dataset: {col: 'x'}}, 'text', otherNode)
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else if (k === 'dataset') Object.assign(e.dataset, v);
      else if (k === 'text') e.textContent = v;
      else if (k.startsWith('on')) e.addEventListener(k.slice(2), v);
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children) {
      if (c === undefined || c === null || c === false) continue;
      e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return e;
  }

  const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

  // The mount point: everything before "/ui/" in the page's path ("/llama/ui/" -> "/llama").
  const BASE = (() => {
    const p = location.pathname;
    const i = p.lastIndexOf('/ui/');
    if (i >= 0) return p.slice(0, i);
    if (p.endsWith('/ui')) return p.slice(0, -3);
    return p.replace(/\/[^/]*$/, '');
  })();

  // A model id in a path: ids may contain "/", which stays a separator.
  const pathOf = (id) => id.split('/').map(encodeURIComponent).join('/');

  function fmtMs(v) {
    if (typeof v !== 'number' || v < 0) return '–';
    if (v < 1000) return Math.round(v) + ' ms';
    if (v < 60000) return (v / 1000).toFixed(2) + ' s';
    return (v / 60000).toFixed(1) + ' min';
  }
  const fmtInt = (v) => (typeof v === 'number' && v >= 0 ? String(Math.round(v)) : '–');
  const fmtRate = (v) => (typeof v === 'number' && v >= 0 ? v.toFixed(1) : '–');

  function showMsg(node, text) {
    node.textContent = text || '';
    node.hidden = !text;
  }

  // ---------------------------------------------------------------------------------------
  // API key: kept in localStorage; asked for when a request gets 401.

  const KEY_STORE = 'llama-swap.apiKey';
  let apiKey = '';
  try { apiKey = localStorage.getItem(KEY_STORE) || ''; } catch (_) { /* storage disabled */ }
  let keyWaiters = [];

  function authHeaders(extra) {
    const h = Object.assign({}, extra || {});
    if (apiKey) h.Authorization = 'Bearer ' + apiKey;
    return h;
  }

  function updateKeyButton() {
    const b = $('key-button');
    b.textContent = apiKey ? 'Key ✓' : 'Key';
    b.setAttribute('aria-label', apiKey ? 'API key (set): change or forget it' : 'API key (not set)');
    b.dataset.state = apiKey ? 'set' : 'unset';
  }

  function openKeyDialog(message) {
    const d = $('key-dialog');
    $('key-msg').textContent = message;
    $('key-input').value = '';
    $('key-forget').hidden = !apiKey;
    if (!d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    }
    $('key-input').focus();
  }

  function closeKeyDialog() {
    const d = $('key-dialog');
    if (!d.open) return;
    if (typeof d.close === 'function') d.close();
    else d.removeAttribute('open');
  }

  // Resolves once the user saved a key (the caller then retries). `rejected`: the key we
  // sent was refused.
  function needKey(rejected) {
    setConnHint('key');
    openKeyDialog(rejected ? 'The API key was refused. Enter another one.'
      : 'This server needs an API key.');
    return new Promise((resolve) => keyWaiters.push(resolve));
  }

  function saveKey(key) {
    apiKey = key;
    try {
      if (key) localStorage.setItem(KEY_STORE, key);
      else localStorage.removeItem(KEY_STORE);
    } catch (_) { /* storage disabled: the key lives until the page closes */ }
    updateKeyButton();
    const waiters = keyWaiters;
    keyWaiters = [];
    for (const w of waiters) w();
  }

  // fetch() under the mount point with the key; on 401 asks for a key and tries again.
  async function api(path, opts) {
    opts = opts || {};
    for (;;) {
      const sent = apiKey;
      const r = await fetch(BASE + path, Object.assign({}, opts, {
        headers: authHeaders(opts.headers),
        cache: 'no-store',
        // No cookies or HTTP auth of the browser's own: with credentials a 401 that carries
        // WWW-Authenticate makes the browser show its login prompt instead of answering.
        credentials: 'omit',
      }));
      if (r.status !== 401) return r;
      try { await r.body?.cancel(); } catch (_) { /* already gone */ }
      await needKey(sent !== '');
    }
  }

  // The message of an OpenAI-style JSON error, or the text, or the status.
  async function errorText(r) {
    let text = '';
    try { text = await r.text(); } catch (_) { /* no body */ }
    try {
      const j = JSON.parse(text);
      if (j && j.error) {
        const m = typeof j.error === 'string' ? j.error : j.error.message;
        const code = typeof j.error === 'object' && j.error.code ? ' (' + j.error.code + ')' : '';
        if (m) return m + code;
      }
    } catch (_) { /* not JSON */ }
    text = text.trim();
    return 'HTTP ' + r.status + (text ? ': ' + text.slice(0, 300) : '');
  }

  // Reads a streamed body as lines (UTF-8, "\n" or "\r\n"); onLine(line) for each.
  async function readLines(body, onLine, onChunk) {
    const reader = body.getReader();
    const dec = new TextDecoder();
    let pending = '';
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        if (onChunk) onChunk();
        pending += dec.decode(value, { stream: true });
        const parts = pending.split('\n');
        pending = parts.pop();
        for (const p of parts) onLine(p.endsWith('\r') ? p.slice(0, -1) : p);
      }
      pending += dec.decode();
      if (pending) onLine(pending);
    } finally {
      try { reader.releaseLock(); } catch (_) { /* still reading */ }
    }
  }

  // Server-sent events over a fetch() body: onEvent({event, data}) per dispatched event.
  function readSSE(body, onEvent, onChunk) {
    let data = [];
    let event = '';
    return readLines(body, (line) => {
      if (line === '') {
        if (data.length) onEvent({ event: event || 'message', data: data.join('\n') });
        data = [];
        event = '';
        return;
      }
      if (line.startsWith(':')) return; // comment (heartbeat)
      const i = line.indexOf(':');
      const field = i < 0 ? line : line.slice(0, i);
      let value = i < 0 ? '' : line.slice(i + 1);
      if (value.startsWith(' ')) value = value.slice(1);
      if (field === 'data') data.push(value);
      else if (field === 'event') event = value;
    }, onChunk);
  }

  // ---------------------------------------------------------------------------------------
  // State shared by the pages

  let models = [];            // from modelStatus: [{id, name, description, state, unlisted, aliases}]
  const inflight = new Map(); // id -> {model, method, req_path, ...}
  const listeners = { models: [], inflight: [] };
  const emit = (what) => listeners[what].forEach((f) => f());

  // ---------------------------------------------------------------------------------------
  // The one /api/events connection, reconnected with backoff

  let connState = 'connecting';
  function setConn(state, text) {
    connState = state;
    const c = $('conn');
    c.dataset.state = state;
    c.querySelector('.conn-text').textContent = text || state;
  }
  function setConnHint(hint) {
    if (hint === 'key' && connState !== 'connected') setConn('key', 'API key needed');
  }

  function onEvent(ev) {
    let msg;
    try { msg = JSON.parse(ev.data); } catch (_) { return; }
    let data = msg.data;
    if (typeof data === 'string') {
      try { data = JSON.parse(data); } catch (_) { return; }
    }
    if (msg.type === 'modelStatus' && Array.isArray(data)) {
      // Peer models (with peerID) are remote: nothing to load or unload here.
      models = data.filter((m) => m && typeof m.id === 'string' && !m.peerID);
      emit('models');
    } else if (msg.type === 'inflight' && data) {
      if (data.operation === 'snapshot') {
        inflight.clear();
        for (const e of data.entries || []) inflight.set(e.id, e);
      } else if (data.operation === 'upsert') {
        inflight.set(data.id, data);
      } else if (data.operation === 'remove') {
        inflight.delete(data.id);
        onRequestDone();
      }
      emit('inflight');
    }
  }

  async function runEvents() {
    let delay = 500;
    for (;;) {
      setConn('connecting', 'connecting');
      const ctrl = new AbortController();
      // Heartbeats come every 15 s: a silent minute means a dead connection.
      let watchdog = 0;
      const kick = () => {
        clearTimeout(watchdog);
        watchdog = setTimeout(() => ctrl.abort(), 60000);
      };
      try {
        const r = await api('/api/events', { signal: ctrl.signal });
        if (!r.ok) throw new Error(await errorText(r));
        setConn('connected', 'live');
        delay = 500;
        kick();
        await readSSE(r.body, onEvent, kick);
      } catch (_) {
        /* reconnect below */
      } finally {
        clearTimeout(watchdog);
        ctrl.abort();
      }
      const secs = Math.round(delay / 1000);
      setConn('disconnected', 'disconnected, retrying' + (secs >= 1 ? ' in ' + secs + ' s' : ''));
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
    }
  }

  // ---------------------------------------------------------------------------------------
  // Pages and routing

  const PAGES = ['models', 'logs', 'activity', 'playground'];
  const pageHooks = {};  // name -> {enter(), leave()}
  let current = '';

  function route() {
    const m = /^#\/?([a-z]+)/.exec(location.hash);
    const name = m && PAGES.includes(m[1]) ? m[1] : 'models';
    if (name === current) return;
    const prev = current;
    current = name;
    for (const p of PAGES) $('page-' + p).hidden = p !== name;
    for (const a of document.querySelectorAll('nav a[data-page]')) {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = 'llama-swap · ' + name[0].toUpperCase() + name.slice(1);
    if (prev && pageHooks[prev] && pageHooks[prev].leave) pageHooks[prev].leave();
    if (pageHooks[name] && pageHooks[name].enter) pageHooks[name].enter();
  }

  // Keeps a <select>'s options in step with the model list (values kept; first `keep` fixed).
  function syncModelOptions(select, keep) {
    const want = models.map((m) => m.id);
    const have = Array.from(select.options).slice(keep).map((o) => o.value);
    if (want.length === have.length && want.every((v, i) => v === have[i])) return;
    const value = select.value;
    while (select.options.length > keep) select.remove(keep);
    for (const id of want) select.add(el('option', { value: id }, id));
    if (Array.from(select.options).some((o) => o.value === value)) select.value = value;
  }

  // ---------------------------------------------------------------------------------------
  // Models page

  const rows = new Map(); // id -> {tr, badge, aliases, flight, load, unload, msg, name}
  const loading = new Set();

  function inflightByModel() {
    const n = new Map();
    for (const e of inflight.values()) n.set(e.model, (n.get(e.model) || 0) + 1);
    return n;
  }

  function makeRow(id) {
    const r = {};
    r.name = el('div', { class: 'sub' });
    r.badge = el('span', { class: 'badge', 'data-testid': 'model-state' });
    r.aliases = el('td', { 'data-testid': 'model-aliases' });
    r.flight = el('td', { class: 'num', 'data-testid': 'model-inflight' }, '0');
    r.load = el('button', {
      type: 'button', class: 'small', 'data-testid': 'model-load',
      'aria-label': 'Load ' + id, onclick: () => loadModel(id),
    }, 'Load');
    r.unload = el('button', {
      type: 'button', class: 'small', 'data-testid': 'model-unload',
      'aria-label': 'Unload ' + id, onclick: () => unloadModel(id),
    }, 'Unload');
    r.msg = el('div', { class: 'row-msg', 'data-testid': 'model-msg', role: 'alert' });
    r.tr = el('tr', { 'data-model': id, 'data-testid': 'model-row' },
      el('td', null, el('code', { class: 'id' }, id), r.name),
      r.aliases,
      el('td', null, r.badge),
      r.flight,
      el('td', { class: 'actions' }, r.load, ' ', r.unload, r.msg));
    return r;
  }

  function renderModels() {
    const body = $('models-body');
    const counts = inflightByModel();
    const seen = new Set();
    let running = 0;
    models.forEach((m, i) => {
      seen.add(m.id);
      let r = rows.get(m.id);
      if (!r) {
        r = makeRow(m.id);
        rows.set(m.id, r);
      }
      if (body.children[i] !== r.tr) body.insertBefore(r.tr, body.children[i] || null);
      const state = String(m.state || 'stopped');
      if (state !== 'stopped') running++;
      r.badge.textContent = state;
      r.badge.className = 'badge state-' + state.replace(/[^a-z]/g, '');
      r.badge.dataset.state = state;
      r.tr.dataset.state = state;
      const sub = [];
      if (m.name && m.name !== m.id) sub.push(m.name);
      if (m.description) sub.push(m.description);
      if (m.unlisted) sub.push('(unlisted)');
      r.name.textContent = sub.join(' — ');
      r.name.hidden = sub.length === 0;
      r.aliases.textContent = (m.aliases || []).join(', ') || '–';
      r.flight.textContent = String(counts.get(m.id) || 0);
      const busy = loading.has(m.id);
      r.load.disabled = busy || state === 'ready' || state === 'starting';
      r.load.textContent = busy ? 'Loading…' : 'Load';
      r.unload.disabled = state === 'stopped';
    });
    for (const [id, r] of rows) {
      if (!seen.has(id)) {
        r.tr.remove();
        rows.delete(id);
      }
    }
    $('models-empty').hidden = models.length > 0;
    $('models-summary').textContent = models.length
      ? models.length + ' models, ' + running + ' not stopped' : '';
  }

  function renderInflight() {
    const counts = inflightByModel();
    for (const [id, r] of rows) r.flight.textContent = String(counts.get(id) || 0);
    $('inflight-total').textContent = inflight.size + ' in flight';
  }

  async function loadModel(id) {
    const r = rows.get(id);
    if (r) showMsg(r.msg, '');
    loading.add(id);
    renderModels();
    try {
      const res = await api('/api/models/load/' + pathOf(id), { method: 'POST' });
      if (!res.ok) throw new Error(await errorText(res));
    } catch (e) {
      const row = rows.get(id);
      if (row) showMsg(row.msg, 'Load failed: ' + e.message);
    } finally {
      loading.delete(id);
      renderModels();
    }
  }

  async function unloadModel(id) {
    const r = rows.get(id);
    if (r) showMsg(r.msg, '');
    try {
      const res = await api('/api/models/unload/' + pathOf(id), { method: 'POST' });
      if (!res.ok) throw new Error(await errorText(res));
    } catch (e) {
      const row = rows.get(id);
      if (row) showMsg(row.msg, 'Unload failed: ' + e.message);
    }
  }

  async function unloadAll() {
    const b = $('unload-all');
    showMsg($('models-msg'), '');
    b.disabled = true;
    try {
      const res = await api('/api/models/unload', { method: 'POST' });
      if (!res.ok) throw new Error(await errorText(res));
    } catch (e) {
      showMsg($('models-msg'), 'Unload all failed: ' + e.message);
    } finally {
      b.disabled = false;
    }
  }

  // ---------------------------------------------------------------------------------------
  // Logs page: a live /logs/stream[/source] view, capped, following unless scrolled up.

  const LOG_MAX_LINES = 2000;
  const logs = { ctrl: null, gen: 0, follow: true };

  function logPath(source) {
    return '/logs/stream' + (source ? '/' + pathOf(source) : '');
  }

  function setLogState(state, text) {
    const s = $('log-state');
    s.dataset.state = state;
    s.textContent = text;
  }

  function atBottom(v) {
    return v.scrollHeight - v.scrollTop - v.clientHeight < 24;
  }

  function appendLogLines(lines) {
    const v = $('log-view');
    const follow = logs.follow;
    const frag = document.createDocumentFragment();
    for (const line of lines) {
      let cls = 'line';
      if (/\[(error|fatal)\]/i.test(line)) cls += ' err';
      else if (/\[warn(ing)?\]/i.test(line)) cls += ' warn';
      frag.append(el('div', { class: cls }, line));
    }
    v.append(frag);
    let extra = v.childElementCount - LOG_MAX_LINES;
    while (extra-- > 0) v.firstElementChild.remove();
    if (follow) v.scrollTop = v.scrollHeight;
  }

  async function startLogs() {
    stopLogs();
    const gen = ++logs.gen;
    const ctrl = new AbortController();
    logs.ctrl = ctrl;
    logs.follow = true;
    $('log-bottom').hidden = true;
    const source = $('log-source').value;
    $('log-view').replaceChildren();
    let delay = 1000;
    while (gen === logs.gen) {
      setLogState('connecting', 'connecting…');
      try {
        const r = await api(logPath(source), { signal: ctrl.signal });
        if (!r.ok) throw new Error(await errorText(r));
        if (gen !== logs.gen) return;
        setLogState('live', 'live');
        delay = 1000;
        let batch = [];
        let timer = 0;
        const flush = () => {
          timer = 0;
          if (gen === logs.gen && batch.length) appendLogLines(batch);
          batch = [];
        };
        await readLines(r.body, (line) => {
          batch.push(line);
          if (!timer) timer = setTimeout(flush, 0);
        });
        clearTimeout(timer);
        flush();
        if (gen !== logs.gen) return;
        setLogState('ended', 'stream ended, reconnecting…');
      } catch (e) {
        if (gen !== logs.gen || ctrl.signal.aborted) return;
        setLogState('error', 'error: ' + e.message + ' (retrying)');
      }
      await sleep(delay);
      delay = Math.min(delay * 2, 15000);
      if (gen === logs.gen) $('log-view').replaceChildren(); // the history comes again
    }
  }

  function stopLogs() {
    logs.gen++;
    if (logs.ctrl) logs.ctrl.abort();
    logs.ctrl = null;
    setLogState('idle', '');
  }

  function onLogScroll() {
    const v = $('log-view');
    logs.follow = atBottom(v);
    $('log-bottom').hidden = logs.follow;
  }

  // ---------------------------------------------------------------------------------------
  // Activity page

  const act = { page: 1, timer: 0, seq: 0, debounce: 0, active: false };

  async function refreshActivity() {
    const seq = ++act.seq;
    const q = new URLSearchParams();
    q.set('limit', $('activity-limit').value);
    q.set('page', String(act.page));
    const model = $('activity-model').value;
    if (model) q.set('model', model);
    try {
      const r = await api('/api/metrics/activity?' + q.toString());
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      if (seq !== act.seq) return;
      showMsg($('activity-msg'), '');
      renderActivity(j);
    } catch (e) {
      if (seq === act.seq) showMsg($('activity-msg'), 'Could not load activity: ' + e.message);
    }
  }

  function renderActivity(j) {
    const data = Array.isArray(j.data) ? j.data : [];
    const pages = Math.max(1, j.total_pages || 1);
    if (act.page > pages && (j.total || 0) > 0) {
      act.page = pages;
      refreshActivity();
      return;
    }
    const tbody = $('activity-body');
    tbody.replaceChildren(...data.map((a) => {
      const t = new Date((a.timestamp || 0) * 1000);
      const cut = a.outcome && a.outcome !== 'completed';
      const ok = a.status >= 200 && a.status < 400 && !cut;
      const td = (col, text, cls) => el('td', { class: cls, dataset: { col } }, text);
      const statusCell = td('status', String(a.status), 'num ' + (ok ? 'ok' : 'bad'));
      if (cut) {
        // not the upstream's whole answer: say why
        const why = { client_closed: 'client closed', refused: 'refused' }[a.outcome] ||
          'upstream failed';
        statusCell.textContent = a.status + ' (' + why + ')';
        statusCell.title = a.outcome === 'refused'
          ? 'Answered by llama-swap: the request never reached an upstream'
          : 'The response did not reach its end: ' + why;
        statusCell.dataset.outcome = a.outcome;
      }
      return el('tr', { 'data-testid': 'activity-row', 'data-id': a.id, 'data-model': a.model },
        el('td', { dataset: { col: 'time' }, title: t.toLocaleString() }, t.toLocaleTimeString()),
        td('model', a.model),
        td('path', (a.method || '') + ' ' + (a.path || ''), 'path'),
        statusCell,
        td('duration', fmtMs(a.duration_ms), 'num'),
        td('wait', fmtMs(a.wait_ms), 'num'),
        td('upstream', fmtMs(a.upstream_ms), 'num'),
        td('prompt_tokens', fmtInt(a.prompt_tokens), 'num'),
        td('generated_tokens', fmtInt(a.generated_tokens), 'num'),
        td('cached_tokens', fmtInt(a.cached_tokens), 'num'),
        td('prompt_per_second', fmtRate(a.prompt_per_second), 'num'),
        td('tokens_per_second', fmtRate(a.tokens_per_second), 'num'));
    }));
    $('activity-empty').hidden = data.length > 0;
    $('activity-page').textContent = 'page ' + act.page + ' of ' + pages + ' · ' + (j.total || 0) + ' requests';
    $('activity-prev').disabled = act.page <= 1;
    $('activity-next').disabled = act.page >= pages;
  }

  function onRequestDone() {
    if (!act.active) return;
    clearTimeout(act.debounce);
    act.debounce = setTimeout(refreshActivity, 250);
  }

  // ---------------------------------------------------------------------------------------
  // Playground

  const pg = { messages: [], ctrl: null, listed: [] };

  async function refreshPgModels() {
    const sel = $('pg-model');
    try {
      const r = await api('/v1/models');
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      const ids = (Array.isArray(j.data) ? j.data : []).map((m) => m && m.id).filter((x) => typeof x === 'string');
      if (ids.length === pg.listed.length && ids.every((v, i) => v === pg.listed[i])) return;
      pg.listed = ids;
      const value = sel.value;
      sel.replaceChildren(...ids.map((id) => el('option', { value: id }, id)));
      if (ids.includes(value)) sel.value = value;
    } catch (e) {
      showMsg($('pg-error'), 'Could not list the models: ' + e.message);
    }
  }

  function setPgStatus(state, text) {
    const s = $('pg-status');
    s.dataset.state = state;
    s.textContent = text;
  }

  function addMessage(role, text) {
    const body = el('div', { class: 'msg-text' }, text || '');
    const box = el('div', { class: 'msg-' + role, dataset: { role } },
      el('div', { class: 'msg-role' }, role), body);
    $('pg-conversation').append(box);
    return { box, body };
  }

  function scrollConversation() {
    const c = $('pg-conversation');
    c.scrollTop = c.scrollHeight;
  }

  async function send() {
    if (pg.ctrl) return;
    const model = $('pg-model').value;
    const text = $('pg-input').value;
    showMsg($('pg-error'), '');
    if (!model) { showMsg($('pg-error'), 'Choose a model first.'); return; }
    if (!text.trim()) { $('pg-input').focus(); return; }
    $('pg-input').value = '';
    const history = pg.messages; // "New chat" while this streams starts another array
    history.push({ role: 'user', content: text });
    addMessage('user', text);
    const prev = document.querySelector('[data-testid="pg-output"]');
    if (prev) prev.removeAttribute('data-testid');
    const out = addMessage('assistant', '');
    out.body.setAttribute('data-testid', 'pg-output');
    const textNode = document.createTextNode('');
    out.body.append(textNode);
    let reasoning = null;
    scrollConversation();

    const ctrl = new AbortController();
    pg.ctrl = ctrl;
    $('pg-send').disabled = true;
    $('pg-stop').disabled = false;
    setPgStatus('waiting', 'waiting for ' + model + '…');
    const t0 = performance.now();
    let tFirst = 0;
    let chunks = 0;
    let usage = null;
    let timings = null;
    let failed = '';
    try {
      const r = await api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
        body: JSON.stringify({
          model, messages: history, stream: true, stream_options: { include_usage: true },
        }),
        signal: ctrl.signal,
      });
      if (!r.ok) throw new Error(await errorText(r));
      setPgStatus('streaming', 'streaming…');
      let done = false;
      await readSSE(r.body, (ev) => {
        if (done) return;
        const d = ev.data.trim();
        if (d === '[DONE]') { done = true; return; }
        let j;
        try { j = JSON.parse(d); } catch (_) { return; }
        if (j.error) {
          const e = j.error;
          failed = typeof e === 'string' ? e : (e.message || JSON.stringify(e)) + (e.code ? ' (' + e.code + ')' : '');
          return;
        }
        if (j.usage) usage = j.usage;
        if (j.timings) timings = j.timings;
        const delta = j.choices && j.choices[0] && j.choices[0].delta;
        if (!delta) return;
        if (typeof delta.reasoning_content === 'string' && delta.reasoning_content) {
          if (!reasoning) {
            reasoning = el('div', { class: 'reasoning', 'data-testid': 'pg-reasoning' });
            out.box.insertBefore(reasoning, out.body);
          }
          reasoning.append(document.createTextNode(delta.reasoning_content));
        }
        if (typeof delta.content === 'string' && delta.content) {
          if (!tFirst) tFirst = performance.now();
          chunks++;
          textNode.appendData(delta.content);
          setPgStatus('streaming', 'streaming… ' + chunks + ' chunks');
          scrollConversation();
        }
      });
      if (failed) throw new Error(failed);
      const secs = (performance.now() - t0) / 1000;
      const parts = ['done in ' + secs.toFixed(2) + ' s'];
      const gen = usage && usage.completion_tokens;
      if (typeof gen === 'number') parts.push(gen + ' tokens');
      const tps = timings && timings.predicted_per_second;
      if (typeof tps === 'number') parts.push(tps.toFixed(1) + ' tok/s');
      else if (typeof gen === 'number' && tFirst) {
        const s = (performance.now() - tFirst) / 1000;
        if (s > 0) parts.push((gen / s).toFixed(1) + ' tok/s');
      }
      setPgStatus('done', parts.join(' · '));
    } catch (e) {
      if (history !== pg.messages) {
        /* the conversation was cleared meanwhile */
      } else if (ctrl.signal.aborted) {
        setPgStatus('stopped', 'stopped');
        out.box.classList.add('stopped');
      } else {
        setPgStatus('error', 'failed');
        out.box.classList.add('failed');
        showMsg($('pg-error'), e.message || String(e));
      }
    } finally {
      pg.ctrl = null;
      const content = textNode.data;
      if (content) history.push({ role: 'assistant', content });
      else history.pop(); // nothing came back: the question can be asked again
      $('pg-send').disabled = false;
      $('pg-stop').disabled = true;
    }
  }

  function stopSend() {
    if (pg.ctrl) pg.ctrl.abort();
  }

  function clearChat() {
    stopSend();
    pg.messages = [];
    $('pg-conversation').replaceChildren();
    showMsg($('pg-error'), '');
    setPgStatus('idle', '');
  }

  // ---------------------------------------------------------------------------------------
  // Wiring

  function init() {
    updateKeyButton();

    $('key-button').addEventListener('click', () => openKeyDialog(apiKey
      ? 'A key is saved in this browser. Enter a new one or forget it.'
      : 'Enter the API key for this server.'));
    $('key-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const v = $('key-input').value.trim();
      if (!v) { $('key-msg').textContent = 'Enter a key, or Cancel.'; return; }
      closeKeyDialog();
      saveKey(v);
    });
    $('key-forget').addEventListener('click', () => { closeKeyDialog(); saveKey(''); });
    $('key-cancel').addEventListener('click', closeKeyDialog);

    $('unload-all').addEventListener('click', unloadAll);

    $('log-source').addEventListener('change', () => { if (current === 'logs') startLogs(); });
    $('log-view').addEventListener('scroll', onLogScroll, { passive: true });
    $('log-wrap').addEventListener('change', (e) => $('log-view').classList.toggle('wrap', e.target.checked));
    $('log-clear').addEventListener('click', () => $('log-view').replaceChildren());
    $('log-bottom').addEventListener('click', () => {
      const v = $('log-view');
      v.scrollTop = v.scrollHeight;
      logs.follow = true;
      $('log-bottom').hidden = true;
    });

    $('activity-model').addEventListener('change', () => { act.page = 1; refreshActivity(); });
    $('activity-limit').addEventListener('change', () => { act.page = 1; refreshActivity(); });
    $('activity-prev').addEventListener('click', () => { if (act.page > 1) { act.page--; refreshActivity(); } });
    $('activity-next').addEventListener('click', () => { act.page++; refreshActivity(); });
    $('activity-refresh').addEventListener('click', refreshActivity);

    $('pg-form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
    $('pg-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
    });
    $('pg-stop').addEventListener('click', stopSend);
    $('pg-clear').addEventListener('click', clearChat);
    $('pg-models-refresh').addEventListener('click', refreshPgModels);

    listeners.models.push(renderModels, () => {
      syncModelOptions($('log-source'), 3);
      syncModelOptions($('activity-model'), 1);
    });
    listeners.inflight.push(renderInflight);

    pageHooks.logs = { enter: startLogs, leave: stopLogs };
    pageHooks.activity = {
      enter() {
        act.active = true;
        refreshActivity();
        act.timer = setInterval(refreshActivity, 5000);
      },
      leave() {
        act.active = false;
        clearInterval(act.timer);
        clearTimeout(act.debounce);
      },
    };
    pageHooks.playground = { enter: refreshPgModels };

    window.addEventListener('hashchange', route);
    route();
    runEvents();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
