// llama-swap web UI: vanilla ES2020, no build step; Chart.js, marked and highlight.js when built in.
// Every string from the network goes into the page as text (textContent / Text nodes), never
// as HTML, but for the playground's markdown, which is parsed in an inert document and
// copied through an allow-list (safeFragment). Every URL is relative to where the UI is
// mounted, so it works behind a proxy under a sub-path (/llama/ui/ talks to /llama/api/...).
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
  // Formatting and the libraries (each optional: a build without its package serves a stub)

  const num = (v) => (typeof v === 'number' && isFinite(v) ? v : -1);
  const pick = (...vals) => vals.find((v) => v !== undefined && v !== null);
  const fmtNum = (v) => (typeof v === 'number' && v >= 0 ? Math.round(v).toLocaleString('en-US') : '–');
  function fmtBytes(v) {
    if (typeof v !== 'number' || v <= 0) return '–';
    const u = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
    let i = 0;
    while (v >= 1024 && i < u.length - 1) { v /= 1024; i++; }
    return (i ? v.toFixed(1) : String(v)) + ' ' + u[i];
  }
  // A timestamp in ms from seconds (ours, before the rename), ms, or an RFC 3339 string (the original's).
  function toMs(ts) {
    if (typeof ts === 'number') return ts > 1e12 ? ts : ts * 1000;
    const t = Date.parse(ts || '');
    return isNaN(t) ? 0 : t;
  }
  const LIBS = {
    chart: () => (typeof window.Chart === 'function' ? window.Chart : null),
    marked: () => (window.marked && (typeof window.marked.parse === 'function' || typeof window.marked === 'function') ? window.marked : null),
    hljs: () => (window.hljs && typeof window.hljs.highlight === 'function' ? window.hljs : null),
  };

  // An activity record under one set of names: the original's (req_path, resp_status_code,
  // tokens{input_tokens, output_tokens, cache_tokens, ...}, has_capture, error_msg) or ours
  // from before the rename (path, status, prompt_tokens, ...).
  function normRecord(a) {
    const t = a.tokens || {};
    return {
      id: a.id,
      time: toMs(a.timestamp),
      model: a.model || '',
      method: a.method || a.req_method || '',
      path: pick(a.req_path, a.path, ''),
      status: num(pick(a.resp_status_code, a.status)),
      // the original's layout has no outcome: ours says it in error_msg
      outcome: a.outcome || ((/response not completed: (\w+)/.exec(a.error_msg || '') || [])[1]) || '',
      duration_ms: num(a.duration_ms),
      wait_ms: num(a.wait_ms),
      upstream_ms: num(a.upstream_ms),
      prompt_tokens: num(pick(t.input_tokens, a.prompt_tokens)),
      generated_tokens: num(pick(t.output_tokens, a.generated_tokens)),
      cached_tokens: num(pick(t.cache_tokens, a.cached_tokens)),
      prompt_per_second: num(pick(t.prompt_per_second, a.prompt_per_second)),
      tokens_per_second: num(pick(t.tokens_per_second, a.tokens_per_second)),
      has_capture: !!a.has_capture,
      error: a.error_msg || '',
    };
  }

  // ---------------------------------------------------------------------------------------
  // Theme: light or dark, remembered; the OS's preference until the button is used.

  const THEME_STORE = 'llama-swap.theme';
  function storedTheme() {
    try { return localStorage.getItem(THEME_STORE) || ''; } catch (_) { return ''; }
  }
  function applyTheme(theme) {
    const t = theme || (window.matchMedia && matchMedia('(prefers-color-scheme: dark)').matches ? 'dark' : 'light');
    document.documentElement.dataset.theme = t;
    const b = $('theme-toggle');
    b.dataset.theme = t;
    b.setAttribute('aria-label', t === 'dark' ? 'Dark theme: switch to light' : 'Light theme: switch to dark');
    b.title = b.getAttribute('aria-label');
    restyleCharts();
  }
  function toggleTheme() {
    const next = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark';
    try { localStorage.setItem(THEME_STORE, next); } catch (_) { /* not remembered */ }
    applyTheme(next);
  }

  // ---------------------------------------------------------------------------------------
  // Charts (Chart.js when built in; otherwise a note in place of each)

  const charts = new Map(); // canvas id -> Chart
  const cssVar = (n) => getComputedStyle(document.documentElement).getPropertyValue(n).trim();
  const PALETTE = ['#2f6fdb', '#1e8e3e', '#c2571a', '#8e44ad', '#b7791f', '#c0392b', '#16a085'];

  function noChart(id) {
    const c = $(id);
    if (!c || c.dataset.nochart) return;
    c.dataset.nochart = '1';
    c.hidden = true;
    c.parentNode.append(el('p', { class: 'nochart', 'data-testid': 'nochart' },
      'Charts are not built in: this llama-swap was built without libjs-chart.js.'));
  }

  // Creates or updates the chart on canvas `id`: kind 'bar' (labels + one series) or
  // 'time' (series of {x: ms, y} points).
  function drawChart(id, kind, labels, series, yLabel) {
    const Chart = LIBS.chart();
    if (!Chart) { noChart(id); return; }
    let c = charts.get(id);
    const datasets = series.map((s, i) => ({
      label: s.label, data: s.data, backgroundColor: PALETTE[i % PALETTE.length] + (kind === 'bar' ? 'b0' : '30'),
      borderColor: PALETTE[i % PALETTE.length], borderWidth: kind === 'bar' ? 0 : 1.5,
      pointRadius: kind === 'scatter' ? 3 : 0, fill: kind === 'time' && series.length === 1, tension: 0.2,
      showLine: kind !== 'scatter',
    }));
    if (c) {
      if (kind === 'bar') c.data.labels = labels;
      c.data.datasets = datasets;
      c.update('none');
      return;
    }
    const timeTick = (v) => new Date(v).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', second: '2-digit', hour12: false });
    c = new Chart($(id), {
      type: kind === 'bar' ? 'bar' : 'line',
      data: { labels: kind === 'bar' ? labels : undefined, datasets },
      options: {
        animation: false, responsive: true, maintainAspectRatio: false, parsing: kind === 'bar',
        plugins: { legend: { display: series.length > 1 }, tooltip: { enabled: true } },
        scales: {
          x: kind === 'bar' ? { ticks: { maxRotation: 0, autoSkip: true } }
            : { type: 'linear', ticks: { callback: timeTick, maxTicksLimit: 4, maxRotation: 0 } },
          y: { beginAtZero: true, title: { display: !!yLabel, text: yLabel || '' } },
        },
      },
    });
    charts.set(id, c);
    restyleCharts();
  }

  function restyleCharts() {
    const Chart = LIBS.chart();
    if (!Chart) return;
    const text = cssVar('--muted') || '#666';
    const grid = cssVar('--border') || '#ddd';
    Chart.defaults.color = text;
    Chart.defaults.borderColor = grid;
    for (const c of charts.values()) {
      for (const ax of Object.values(c.options.scales || {})) {
        ax.ticks = Object.assign(ax.ticks || {}, { color: text });
        ax.grid = Object.assign(ax.grid || {}, { color: grid });
      }
      c.update('none');
    }
  }

  // A histogram of values: {labels, counts}.
  function histogram(values, bins) {
    const v = values.filter((x) => x >= 0);
    if (!v.length) return { labels: [], counts: [] };
    const min = Math.min(...v);
    const max = Math.max(...v);
    const n = Math.max(1, Math.min(bins, v.length));
    const size = (max - min) / n || 1;
    const counts = new Array(n).fill(0);
    for (const x of v) counts[Math.min(n - 1, Math.floor((x - min) / size))]++;
    const labels = counts.map((_, i) => (min + i * size).toFixed(0) + '–' + (min + (i + 1) * size).toFixed(0));
    return { labels, counts };
  }
  function percentile(values, p) {
    const v = values.filter((x) => x >= 0).sort((a, b) => a - b);
    if (!v.length) return -1;
    return v[Math.min(v.length - 1, Math.floor(p / 100 * v.length))];
  }

  // ---------------------------------------------------------------------------------------
  // Markdown: marked's HTML is parsed in an inert document and only an allow-list of
  // elements and attributes is copied into the page (no script, style, event handler,
  // image or foreign URL scheme); code blocks are highlighted by highlight.js, whose
  // output goes through the same filter.

  const MD_TAGS = new Set(['P', 'BR', 'HR', 'H1', 'H2', 'H3', 'H4', 'H5', 'H6', 'UL', 'OL', 'LI',
    'BLOCKQUOTE', 'PRE', 'CODE', 'EM', 'STRONG', 'DEL', 'S', 'A', 'TABLE', 'THEAD', 'TBODY', 'TR',
    'TH', 'TD', 'SPAN', 'SUP', 'SUB', 'B', 'I', 'KBD', 'DETAILS', 'SUMMARY', 'INPUT']);

  function copySafe(src, dst) {
    for (const n of Array.from(src.childNodes)) {
      if (n.nodeType === Node.TEXT_NODE) { dst.append(document.createTextNode(n.data)); continue; }
      if (n.nodeType !== Node.ELEMENT_NODE) continue;
      if (!MD_TAGS.has(n.tagName)) {
        if (n.tagName === 'IMG') dst.append(document.createTextNode('[image: ' + (n.getAttribute('alt') || n.getAttribute('src') || '') + ']'));
        else if (!['SCRIPT', 'STYLE', 'TEMPLATE', 'IFRAME', 'OBJECT'].includes(n.tagName)) copySafe(n, dst);
        continue;
      }
      if (n.tagName === 'INPUT' && n.getAttribute('type') !== 'checkbox') continue;
      const e = document.createElement(n.tagName.toLowerCase());
      if (n.tagName === 'A') {
        const href = n.getAttribute('href') || '';
        if (/^(https?:|mailto:|#)/i.test(href)) {
          e.setAttribute('href', href);
          e.setAttribute('rel', 'noopener noreferrer');
          e.setAttribute('target', '_blank');
        }
      } else if (n.tagName === 'INPUT') {
        e.setAttribute('type', 'checkbox');
        e.disabled = true;
        if (n.hasAttribute('checked')) e.checked = true;
      } else if (n.tagName === 'OL' && /^\d+$/.test(n.getAttribute('start') || '')) {
        e.setAttribute('start', n.getAttribute('start'));
      } else if (n.tagName === 'TH' || n.tagName === 'TD') {
        const al = n.getAttribute('align') || n.style.textAlign;
        if (/^(left|right|center)$/.test(al || '')) e.style.textAlign = al;
      }
      const cls = (n.getAttribute('class') || '').split(/\s+/).filter((c) => /^(hljs(-[a-z_-]+)?|language-[\w+#.-]+)$/.test(c));
      if (cls.length) e.className = cls.join(' ');
      copySafe(n, e);
      dst.append(e);
    }
  }
  const inert = new DOMParser();
  function safeFragment(html) {
    const doc = inert.parseFromString('<!doctype html><body>' + html, 'text/html');
    const frag = document.createDocumentFragment();
    copySafe(doc.body, frag);
    return frag;
  }

  function highlightCode(codeEl) {
    const hljs = LIBS.hljs();
    if (!hljs || codeEl.dataset.hl) return;
    codeEl.dataset.hl = '1';
    const code = codeEl.textContent;
    const m = /language-([\w+#.-]+)/.exec(codeEl.className);
    const lang = m && hljs.getLanguage(m[1]) ? m[1] : '';
    let html;
    try {
      const major = parseInt(hljs.versionString || '9', 10);
      if (lang) html = major >= 10 ? hljs.highlight(code, { language: lang }).value : hljs.highlight(lang, code, true).value;
      else if (code.length < 20000) html = hljs.highlightAuto(code).value;
    } catch (_) { return; }
    if (!html) return;
    codeEl.replaceChildren(safeFragment(html));
    codeEl.classList.add('hljs');
  }

  // Renders markdown text into `node` (plain text without marked, or when switched off).
  function renderMarkdown(node, text, final) {
    const m = LIBS.marked();
    if (!m || !$('pg-markdown').checked) {
      node.classList.remove('md');
      node.textContent = text;
      return;
    }
    const parse = typeof m.parse === 'function' ? m.parse : m;
    let html;
    try { html = parse(text, { gfm: true, breaks: false, headerIds: false, mangle: false }); } catch (_) { node.textContent = text; return; }
    node.classList.add('md');
    node.replaceChildren(safeFragment(html));
    // While streaming, only finished code blocks (all but a last one still growing).
    const blocks = node.querySelectorAll('pre > code');
    blocks.forEach((c, i) => { if (final || i < blocks.length - 1) highlightCode(c); });
  }

  // ---------------------------------------------------------------------------------------
  // State shared by the pages

  let models = [];            // from modelStatus: [{id, name, description, state, unlisted, aliases}]
  let modelsKnown = false;    // a modelStatus arrived
  const inflight = new Map(); // id -> entry
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
    c.title = text || state;
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
      modelsKnown = true;
      emit('models');
    } else if (msg.type === 'inflight' && data) {
      // Both layouts: {snapshot, requests|entries}, {upsert, request | the entry itself}, {remove, id}.
      if (data.operation === 'snapshot') {
        inflight.clear();
        for (const e of data.requests || data.entries || []) inflight.set(String(e.id), e);
      } else if (data.operation === 'upsert') {
        const e = data.request || data;
        inflight.set(String(e.id), e);
      } else if (data.operation === 'remove') {
        inflight.delete(String(data.id));
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
  // Pages and routing: #/page, and #/models/<id> for one model's details

  const PAGES = ['models', 'logs', 'activity', 'performance', 'playground'];
  const pageHooks = {};  // name -> {enter(arg), leave()}
  let current = '';
  let currentArg = null;

  function route() {
    const m = /^#\/?([a-z]+)(?:\/(.*))?$/.exec(location.hash);
    const name = m && PAGES.includes(m[1]) ? m[1] : 'models';
    let arg = null;
    if (m && m[2] && name === 'models') {
      try { arg = decodeURIComponent(m[2]); } catch (_) { arg = m[2]; }
    }
    $('nav').classList.remove('open');
    $('nav-toggle').setAttribute('aria-expanded', 'false');
    if (name === current && arg === currentArg) return;
    const prev = current;
    current = name;
    currentArg = arg;
    for (const p of PAGES) $('page-' + p).hidden = p !== name;
    for (const a of document.querySelectorAll('nav a[data-page]')) {
      if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
      else a.removeAttribute('aria-current');
    }
    document.title = 'llama-swap · ' + (arg || name[0].toUpperCase() + name.slice(1));
    if (prev && pageHooks[prev] && pageHooks[prev].leave) pageHooks[prev].leave();
    if (pageHooks[name] && pageHooks[name].enter) pageHooks[name].enter(arg);
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

  // Checks once whether the daemon has a route (for the APIs newer than some daemons):
  // true unless it answers 404 or 405.
  const probes = new Map();
  function hasApi(path) {
    if (!probes.has(path)) {
      probes.set(path, api(path).then((r) => {
        try { r.body?.cancel(); } catch (_) { /* no body */ }
        return r.status !== 404 && r.status !== 405;
      }).catch(() => false));
    }
    return probes.get(path);
  }

  // ---------------------------------------------------------------------------------------
  // A live log view: /logs/stream/<source> into a node, capped, following unless scrolled up.

  const LOG_MAX_LINES = 2000;

  class LogView {
    constructor(view, stateNode, opts) {
      this.view = view;
      this.state = stateNode;
      this.opts = opts || {};
      this.ctrl = null;
      this.gen = 0;
      this.follow = true;
      this.filter = '';
      view.addEventListener('scroll', () => {
        this.follow = this.view.scrollHeight - this.view.scrollTop - this.view.clientHeight < 24;
        if (this.opts.onFollow) this.opts.onFollow(this.follow);
      }, { passive: true });
    }

    setState(state, text) {
      this.state.dataset.state = state;
      this.state.textContent = text;
    }

    append(lines) {
      const frag = document.createDocumentFragment();
      for (const line of lines) {
        let cls = 'line';
        if (/\[(error|fatal)\]|\berror\b/i.test(line)) cls += ' err';
        else if (/\[warn(ing)?\]/i.test(line)) cls += ' warn';
        const d = el('div', { class: cls }, line);
        if (this.filter && !line.toLowerCase().includes(this.filter)) d.hidden = true;
        frag.append(d);
      }
      this.view.append(frag);
      let extra = this.view.childElementCount - LOG_MAX_LINES;
      while (extra-- > 0) this.view.firstElementChild.remove();
      if (this.follow) this.view.scrollTop = this.view.scrollHeight;
    }

    setFilter(text) {
      this.filter = text.toLowerCase();
      for (const d of this.view.children) d.hidden = !!this.filter && !d.textContent.toLowerCase().includes(this.filter);
    }

    bottom() {
      this.view.scrollTop = this.view.scrollHeight;
      this.follow = true;
    }

    async start(source) {
      this.stop();
      const gen = ++this.gen;
      const ctrl = new AbortController();
      this.ctrl = ctrl;
      this.follow = true;
      this.view.replaceChildren();
      let delay = 1000;
      const path = '/logs/stream' + (source ? '/' + pathOf(source) : '');
      while (gen === this.gen) {
        this.setState('connecting', 'connecting…');
        try {
          const r = await api(path, { signal: ctrl.signal });
          if (!r.ok) throw new Error(await errorText(r));
          if (gen !== this.gen) return;
          this.setState('live', 'live');
          delay = 1000;
          let batch = [];
          let timer = 0;
          const flush = () => {
            timer = 0;
            if (gen === this.gen && batch.length) this.append(batch);
            batch = [];
          };
          await readLines(r.body, (line) => {
            batch.push(line);
            if (!timer) timer = setTimeout(flush, 0);
          });
          clearTimeout(timer);
          flush();
          if (gen !== this.gen) return;
          this.setState('ended', 'stream ended, reconnecting…');
        } catch (e) {
          if (gen !== this.gen || ctrl.signal.aborted) return;
          this.setState('error', 'error: ' + e.message + ' (retrying)');
        }
        await sleep(delay);
        delay = Math.min(delay * 2, 15000);
        if (gen === this.gen) this.view.replaceChildren(); // the history comes again
      }
    }

    stop() {
      this.gen++;
      if (this.ctrl) this.ctrl.abort();
      this.ctrl = null;
      this.setState('idle', '');
    }
  }

  // ---------------------------------------------------------------------------------------
  // Models page: the list, and one model's details

  const rows = new Map(); // id -> {tr, badge, aliases, flight, load, unload, msg, name}
  const loading = new Set();
  const lastLoad = new Map(); // id -> seconds, from this page's Load

  function inflightByModel() {
    const n = new Map();
    for (const e of inflight.values()) n.set(e.model, (n.get(e.model) || 0) + 1);
    return n;
  }

  const detailsHref = (id) => '#/models/' + encodeURIComponent(id);

  function makeRow(id) {
    const r = {};
    r.name = el('div', { class: 'sub' });
    r.badge = el('span', { class: 'badge', 'data-testid': 'model-state' });
    r.aliases = el('td', { class: 'hide-narrow', 'data-testid': 'model-aliases' });
    r.flight = el('td', { class: 'num hide-narrow', 'data-testid': 'model-inflight' }, '0');
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
      el('td', null, el('a', { class: 'model-link', href: detailsHref(id), 'data-testid': 'model-details-link', title: 'Details, logs and activity of ' + id },
        el('code', { class: 'id' }, id)), r.name),
      r.aliases,
      el('td', null, r.badge),
      r.flight,
      el('td', { class: 'actions' }, r.load, ' ', r.unload, r.msg));
    return r;
  }

  function setBadge(badge, state) {
    badge.textContent = state;
    badge.className = 'badge state-' + state.replace(/[^a-z]/g, '');
    badge.dataset.state = state;
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
      setBadge(r.badge, state);
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
    $('models-empty').hidden = modelsKnown;
    $('models-none').hidden = !modelsKnown || models.length > 0;
    const none = modelsKnown && models.length === 0;
    body.closest('.table-wrap').hidden = none; // no empty table above the message
    $('unload-all').hidden = none;
    $('models-summary').textContent = models.length
      ? models.length + ' models, ' + running + ' not stopped' : '';
    if (details.id) renderDetails();
  }

  function renderInflightCounts() {
    const counts = inflightByModel();
    for (const [id, r] of rows) r.flight.textContent = String(counts.get(id) || 0);
    $('inflight-total').textContent = inflight.size + ' in flight';
  }

  async function loadModel(id) {
    const r = rows.get(id);
    if (r) showMsg(r.msg, '');
    if (details.id === id) showMsg($('d-msg'), '');
    loading.add(id);
    renderModels();
    try {
      const res = await api('/api/models/load/' + pathOf(id), { method: 'POST' });
      if (!res.ok) throw new Error(await errorText(res));
      try {
        const j = await res.json();
        if (typeof j.load_seconds === 'number') lastLoad.set(id, j.load_seconds);
      } catch (_) { /* an older daemon's "OK" */ }
    } catch (e) {
      const row = rows.get(id);
      if (row) showMsg(row.msg, 'Load failed: ' + e.message);
      if (details.id === id) showMsg($('d-msg'), 'Load failed: ' + e.message);
    } finally {
      loading.delete(id);
      renderModels();
      if (details.id === id) refreshDetails();
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
      if (details.id === id) showMsg($('d-msg'), 'Unload failed: ' + e.message);
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

  // One model's page: what /running says about it (pid, unit or cgroup, command, memory,
  // GPU memory), its load times from /metrics, its own live log and its requests.
  const details = { id: null, running: null, loadStats: null, timer: 0, tab: 'logs', log: null, seq: 0 };

  function promLabel(line, name) {
    const m = new RegExp(name + '="((?:[^"\\\\]|\\\\.)*)"').exec(line);
    return m ? m[1].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)) : null;
  }

  // Starts and load durations of one model from the Prometheus text (absent on older daemons).
  async function modelLoadStats(id) {
    try {
      const r = await api('/metrics');
      if (!r.ok) return null;
      const text = await r.text();
      const out = { starts: -1, loads: -1, loadSum: -1 };
      for (const line of text.split('\n')) {
        if (line.startsWith('#')) continue;
        const sp = line.lastIndexOf(' ');
        const v = Number(line.slice(sp + 1));
        if (promLabel(line, 'model') !== id) continue;
        if (line.startsWith('llamaswap_model_starts_total')) out.starts = v;
        else if (line.startsWith('llamaswap_model_load_duration_seconds_sum')) out.loadSum = v;
        else if (line.startsWith('llamaswap_model_load_duration_seconds_count')) out.loads = v;
      }
      return out;
    } catch (_) { return null; }
  }

  async function refreshDetails() {
    const id = details.id;
    if (!id) return;
    const seq = ++details.seq;
    try {
      const r = await api('/running');
      if (r.ok) {
        const j = await r.json();
        const list = Array.isArray(j.running) ? j.running : Array.isArray(j) ? j : [];
        if (seq !== details.seq) return;
        details.running = list.find((x) => x && x.model === id) || null;
      }
    } catch (_) { /* keep the last */ }
    const stats = await modelLoadStats(id);
    if (seq !== details.seq) return;
    details.loadStats = stats;
    renderDetails();
  }

  function renderDetails() {
    const id = details.id;
    const m = models.find((x) => x.id === id);
    const run = details.running || {};
    const state = String((m && m.state) || run.state || 'stopped');
    $('d-title').textContent = id;
    setBadge($('d-badge'), state);
    $('d-load').disabled = loading.has(id) || state === 'ready' || state === 'starting';
    $('d-load').textContent = loading.has(id) ? 'Loading…' : 'Load';
    $('d-unload').disabled = state === 'stopped';
    const facts = [];
    const add = (k, v, key, mono) => {
      if (v === undefined || v === null || v === '') return;
      facts.push(el('dt', null, k), el('dd', { 'data-fact': key }, mono ? el('code', null, String(v)) : String(v)));
    };
    if (!m && modelsKnown) add('Note', 'This model is not in the configuration (any more).', 'note');
    if (m && m.name && m.name !== id) add('Name', m.name, 'name');
    if (m && m.description) add('Description', m.description, 'description');
    if (m && m.aliases && m.aliases.length) add('Aliases', m.aliases.join(', '), 'aliases');
    add('State', state, 'state');
    const live = state !== 'stopped' && details.running;
    if (live) {
      add('PID', run.pid, 'pid');
      add(run.unit ? 'Unit' : 'Cgroup', run.unit || run.cgroup, 'unit', true);
      add('Command', Array.isArray(run.cmd) ? run.cmd.join(' ') : run.cmd, 'cmd', true);
      add('Upstream', run.proxy, 'proxy', true);
      add('Memory', run.memoryBytes > 0 ? fmtBytes(run.memoryBytes) : null, 'memory');
      const gpu = pick(run.gpuMemoryBytes, run.gpu_memory_bytes, run.gpuMemory);
      if (typeof gpu === 'number') add('GPU memory', gpu > 0 ? fmtBytes(gpu) : '0 B', 'gpu-memory');
      else if (Array.isArray(gpu)) add('GPU memory', gpu.map((g) => (g.gpu !== undefined ? 'GPU ' + g.gpu + ': ' : '') + fmtBytes(g.bytes || g.usedBytes)).join(', '), 'gpu-memory');
      if (typeof run.ttl === 'number' && run.ttl > 0) add('TTL', run.ttl + ' s idle', 'ttl');
      add('In flight', pick(run.inFlight, 0) + ' · queued ' + pick(run.queued, 0), 'inflight');
      const uc = run.upstreamConnections;
      if (uc && typeof uc === 'object') add('Upstream connections', (uc.open || 0) + ' open' + (uc.cap ? ' of ' + uc.cap : '') + (uc.waiting ? ', ' + uc.waiting + ' waiting' : ''), 'connections');
    }
    if (run.error || (m && m.error)) add('Error', run.error || m.error, 'error');
    const ls = details.loadStats;
    const loads = [];
    if (lastLoad.has(id)) loads.push('last ' + lastLoad.get(id).toFixed(2) + ' s (from this page)');
    if (ls && ls.loads > 0) loads.push('mean ' + (ls.loadSum / ls.loads).toFixed(2) + ' s over ' + ls.loads);
    if (ls && ls.starts >= 0) loads.push(ls.starts + ' starts since the daemon started');
    add('Load time', loads.join(' · ') || '–', 'load');
    $('d-facts').replaceChildren(...facts);
  }

  function setDetailsTab(tab) {
    details.tab = tab;
    for (const b of document.querySelectorAll('#model-details [role="tab"]')) b.setAttribute('aria-selected', String(b.dataset.tab === tab));
    $('d-logs').hidden = tab !== 'logs';
    $('d-activity').hidden = tab !== 'activity';
    $('d-log-state').hidden = tab !== 'logs';
    if (tab === 'activity') refreshDetailsActivity();
  }

  async function refreshDetailsActivity() {
    const id = details.id;
    if (!id) return;
    try {
      const r = await api('/api/metrics/activity?limit=50&model=' + encodeURIComponent(id));
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      if (id !== details.id) return;
      const data = (Array.isArray(j.data) ? j.data : []).map(normRecord);
      $('d-activity-body').replaceChildren(...data.map((a) => el('tr', { 'data-testid': 'details-activity-row' },
        el('td', null, new Date(a.time).toLocaleTimeString()),
        el('td', { class: 'path' }, (a.method ? a.method + ' ' : '') + a.path),
        statusCell(a),
        el('td', { class: 'num' }, fmtMs(a.duration_ms)),
        el('td', { class: 'num' }, fmtInt(a.prompt_tokens)),
        el('td', { class: 'num' }, fmtInt(a.generated_tokens)),
        el('td', { class: 'num' }, fmtRate(a.tokens_per_second)))));
      $('d-activity-empty').hidden = data.length > 0;
    } catch (e) {
      showMsg($('d-msg'), 'Could not load the activity: ' + e.message);
    }
  }

  function enterModels(arg) {
    leaveModels();
    $('models-list').hidden = !!arg;
    $('model-details').hidden = !arg;
    if (!arg) return;
    details.id = arg;
    details.running = null;
    details.loadStats = null;
    showMsg($('d-msg'), '');
    renderDetails();
    refreshDetails();
    details.timer = setInterval(refreshDetails, 3000);
    details.log.start(arg);
    setDetailsTab(details.tab);
  }

  function leaveModels() {
    clearInterval(details.timer);
    details.id = null;
    details.seq++;
    if (details.log) details.log.stop();
  }

  // ---------------------------------------------------------------------------------------
  // Logs page

  let logPage = null;

  // ---------------------------------------------------------------------------------------
  // Activity page: statistics, charts, what is in flight, the requests, captures, export

  const act = { page: 1, timer: 0, seq: 0, debounce: 0, active: false, canCancel: false, all: [], stats: null };

  function modelQuery() {
    const model = $('activity-model').value;
    return model ? '&model=' + encodeURIComponent(model) : '';
  }

  async function refreshActivity() {
    const seq = ++act.seq;
    try {
      const r = await api('/api/metrics/activity?limit=' + $('activity-limit').value + '&page=' + act.page + modelQuery());
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      if (seq !== act.seq) return;
      showMsg($('activity-msg'), '');
      renderActivity(j);
    } catch (e) {
      if (seq === act.seq) showMsg($('activity-msg'), 'Could not load activity: ' + e.message);
    }
    refreshStats(seq);
  }

  function statusCell(a) {
    const cut = a.outcome && a.outcome !== 'completed';
    const ok = a.status >= 200 && a.status < 400 && !cut && !a.error;
    const td = el('td', { class: 'num ' + (ok ? 'ok' : 'bad'), dataset: { col: 'status' } }, String(a.status));
    if (cut) {
      // not the upstream's whole answer: say why
      const why = { client_closed: 'client closed', refused: 'refused' }[a.outcome] || 'upstream failed';
      td.textContent = a.status + ' (' + why + ')';
      td.title = a.outcome === 'refused'
        ? 'Answered by llama-swap: the request never reached an upstream'
        : 'The response did not reach its end: ' + why;
      td.dataset.outcome = a.outcome;
    }
    if (a.error) td.title = a.error;
    return td;
  }

  function renderActivity(j) {
    const data = (Array.isArray(j.data) ? j.data : []).map(normRecord);
    const pages = Math.max(1, j.total_pages || 1);
    if (act.page > pages && (j.total || 0) > 0) {
      act.page = pages;
      refreshActivity();
      return;
    }
    $('activity-body').replaceChildren(...data.map((a) => {
      const td = (col, text, cls) => el('td', { class: cls, dataset: { col } }, text);
      const cap = td('capture', '');
      if (a.has_capture) {
        cap.append(el('button', { type: 'button', class: 'small', 'data-testid': 'capture-view', onclick: () => showCapture(a.id) }, 'View'));
      }
      return el('tr', { 'data-testid': 'activity-row', 'data-id': a.id, 'data-model': a.model },
        el('td', { dataset: { col: 'time' }, title: new Date(a.time).toLocaleString() }, new Date(a.time).toLocaleTimeString()),
        td('model', a.model),
        td('path', (a.method ? a.method + ' ' : '') + a.path, 'path'),
        statusCell(a),
        td('duration', fmtMs(a.duration_ms), 'num'),
        td('wait', fmtMs(a.wait_ms), 'num'),
        td('upstream', fmtMs(a.upstream_ms), 'num'),
        td('prompt_tokens', fmtInt(a.prompt_tokens), 'num'),
        td('generated_tokens', fmtInt(a.generated_tokens), 'num'),
        td('cached_tokens', fmtInt(a.cached_tokens), 'num'),
        td('prompt_per_second', fmtRate(a.prompt_per_second), 'num'),
        td('tokens_per_second', fmtRate(a.tokens_per_second), 'num'),
        cap);
    }));
    $('activity-empty').hidden = data.length > 0;
    // The original's record layout has no wait or upstream time: no empty columns then.
    const timing = (j.data || []).some((a) => a && (a.wait_ms !== undefined || a.upstream_ms !== undefined));
    document.querySelector('[data-testid="activity-table"]').classList.toggle('no-timing', data.length > 0 && !timing);
    $('activity-page').textContent = 'page ' + act.page + ' of ' + pages + ' · ' + (j.total || 0) + ' requests';
    $('activity-prev').disabled = act.page <= 1;
    $('activity-next').disabled = act.page >= pages;
  }

  // Every recorded request of the selected model(s), newest first (for statistics and export).
  async function fetchAllActivity() {
    const out = [];
    for (let page = 1; page <= 100; page++) {
      const r = await api('/api/metrics/activity?limit=999&page=' + page + modelQuery());
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      for (const a of Array.isArray(j.data) ? j.data : []) out.push(a);
      if (page >= (j.total_pages || 1)) break;
    }
    return out;
  }

  // /api/metrics/stats when the daemon has it (the original's layout), else computed here
  // from the records.
  async function refreshStats(seq) {
    let stats = null;
    let source = 'computed in the browser from the recorded requests';
    try {
      if (await hasApi('/api/metrics/stats')) {
        const r = await api('/api/metrics/stats?' + modelQuery().slice(1));
        if (r.ok) { stats = await r.json(); source = 'from /api/metrics/stats'; }
      }
      const raw = await fetchAllActivity();
      if (seq !== act.seq) return;
      act.all = raw;
      const recs = raw.map(normRecord);
      const pps = recs.map((a) => a.prompt_per_second);
      const tps = recs.map((a) => a.tokens_per_second);
      const sum = (k) => recs.reduce((s, a) => s + (a[k] > 0 ? a[k] : 0), 0);
      const s = stats || {};
      const cards = [
        ['Requests', pick(s.total_requests, recs.length), 'requests'],
        ['Input tokens', pick(s.total_input_tokens, sum('prompt_tokens')), 'input'],
        ['Output tokens', pick(s.total_output_tokens, sum('generated_tokens')), 'output'],
        ['Cached tokens', pick(s.total_cache_tokens, sum('cached_tokens')), 'cached'],
      ];
      const gh = s.gen_histogram;
      const p = (h, k, vals, q) => (h && typeof h[k] === 'number' ? h[k] : percentile(vals, q));
      const rate = (v) => (v >= 0 ? v.toFixed(1) : '–');
      const cardEls = cards.map(([label, v, key]) => el('div', { class: 'card', 'data-stat': key },
        el('div', { class: 'label' }, label), el('div', { class: 'value' }, fmtNum(v))));
      cardEls.push(el('div', { class: 'card', 'data-stat': 'gen-tps' }, el('div', { class: 'label' }, 'Gen tok/s p50 · p95 · p99'),
        el('div', { class: 'value small-value' }, [p(gh, 'p50', tps, 50), p(gh, 'p95', tps, 95), p(gh, 'p99', tps, 99)].map(rate).join(' · '))));
      $('act-stats').replaceChildren(...cardEls);
      $('act-stats-note').textContent = 'Statistics ' + source + ' (the daemon keeps the last requests in memory).';
      const fromApi = (h) => {
        if (!h || !Array.isArray(h.bins)) return null;
        const size = h.binSize || 1;
        return { labels: h.bins.map((_, i) => (h.min + i * size).toFixed(0)), counts: h.bins };
      };
      const hp = fromApi(s.prompt_histogram) || histogram(pps, 12);
      const hg = fromApi(gh) || histogram(tps, 12);
      drawChart('chart-pps', 'bar', hp.labels, [{ label: 'requests', data: hp.counts }]);
      drawChart('chart-tps', 'bar', hg.labels, [{ label: 'requests', data: hg.counts }]);
    } catch (e) {
      if (seq === act.seq) $('act-stats-note').textContent = 'Statistics unavailable: ' + e.message;
    }
  }

  function renderInflightTable() {
    if (!act.active) return;
    const list = Array.from(inflight.values());
    $('inflight-count').textContent = '(' + list.length + ')';
    $('inflight-empty').hidden = list.length > 0;
    const now = Date.now();
    $('inflight-body').replaceChildren(...list.map((e) => {
      const start = toMs(pick(e.timestamp, e.started_at, 0));
      const elapsed = start ? now - start : num(e.elapsed_ms);
      const actions = el('td', { class: 'actions' });
      if (act.canCancel) {
        actions.append(el('button', { type: 'button', class: 'small danger', 'data-testid': 'inflight-cancel',
          'aria-label': 'Cancel request ' + e.id, onclick: (ev) => cancelRequest(e.id, ev.target) }, 'Cancel'));
      }
      return el('tr', { 'data-testid': 'inflight-row', 'data-id': String(e.id), 'data-model': e.model || '' },
        el('td', null, start ? new Date(start).toLocaleTimeString() : '–'),
        el('td', null, e.model || ''),
        el('td', { class: 'path' }, (e.method ? e.method + ' ' : '') + pick(e.req_path, e.path, '')),
        el('td', { class: 'num' }, fmtMs(elapsed)),
        el('td', { class: 'hide-narrow' }, e.remote_ip || e.client || ''),
        actions);
    }));
  }

  async function cancelRequest(id, button) {
    button.disabled = true;
    button.textContent = 'Cancelling…';
    try {
      const r = await api('/api/inflight/' + encodeURIComponent(id) + '/cancel', { method: 'POST' });
      if (!r.ok) throw new Error(await errorText(r));
    } catch (e) {
      showMsg($('activity-msg'), 'Cancel failed: ' + e.message);
      button.disabled = false;
      button.textContent = 'Cancel';
    }
  }

  function b64text(s) {
    if (typeof s !== 'string' || !s) return '';
    try {
      const bytes = Uint8Array.from(atob(s), (c) => c.charCodeAt(0));
      return new TextDecoder().decode(bytes);
    } catch (_) { return s; }
  }

  async function showCapture(id) {
    const d = $('capture-dialog');
    const body = $('capture-body');
    body.replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
    if (!d.open) d.showModal();
    try {
      const r = await api('/api/captures/' + encodeURIComponent(id));
      if (r.status === 404) throw new Error('no capture kept for request ' + id + ' (captures need captureBuffer, and old ones are dropped)');
      if (!r.ok) throw new Error(await errorText(r));
      const c = await r.json();
      const headers = (h) => Object.entries(h || {}).map(([k, v]) => k + ': ' + v).join('\n');
      const pretty = (t) => { try { return JSON.stringify(JSON.parse(t), null, 2); } catch (_) { return t; } };
      // A part the capture does not keep (null: audio and image payloads, a failed request's
      // response body) says so rather than looking empty.
      const sec = (title, text, key) => [el('h3', null, title), el('pre', { 'data-capture': key }, text == null ? '(not kept)' : text || '(empty)')];
      const part = (v, f) => (v == null ? null : f(v));
      body.replaceChildren(el('div', { class: 'capture' },
        el('p', null, el('code', null, c.req_path || '')),
        ...sec('Request headers', part(c.req_headers, headers), 'req-headers'),
        ...sec('Request body', part(c.req_body, (b) => pretty(b64text(b))), 'req-body'),
        ...sec('Response headers', part(c.resp_headers, headers), 'resp-headers'),
        ...sec('Response body', part(c.resp_body, (b) => pretty(b64text(b))), 'resp-body')));
    } catch (e) {
      body.replaceChildren(el('p', { class: 'msg' }, 'Could not load the capture: ' + e.message));
    }
  }

  function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const a = el('a', { href: url, download: name });
    document.body.append(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10000);
  }

  const EXPORT_COLS = ['id', 'time', 'model', 'method', 'path', 'status', 'outcome', 'duration_ms', 'wait_ms',
    'upstream_ms', 'prompt_tokens', 'generated_tokens', 'cached_tokens', 'prompt_per_second', 'tokens_per_second', 'error'];

  async function exportActivity(kind) {
    try {
      const raw = await fetchAllActivity();
      const stamp = new Date().toISOString().replace(/[:.]/g, '-').slice(0, 19);
      if (kind === 'json') {
        download('llama-swap-activity-' + stamp + '.json', 'application/json', JSON.stringify(raw, null, 2) + '\n');
        return;
      }
      const q = (v) => {
        const s = v === undefined || v === null ? '' : String(v);
        return /[",\n\r]/.test(s) ? '"' + s.replace(/"/g, '""') + '"' : s;
      };
      const lines = [EXPORT_COLS.join(',')];
      for (const a of raw.map(normRecord)) {
        const row = Object.assign({}, a, { time: a.time ? new Date(a.time).toISOString() : '' });
        lines.push(EXPORT_COLS.map((c) => q(row[c])).join(','));
      }
      download('llama-swap-activity-' + stamp + '.csv', 'text/csv', lines.join('\r\n') + '\r\n');
    } catch (e) {
      showMsg($('activity-msg'), 'Export failed: ' + e.message);
    }
  }

  function onRequestDone() {
    if (act.active) {
      clearTimeout(act.debounce);
      act.debounce = setTimeout(refreshActivity, 250);
    }
    if (details.id && details.tab === 'activity') setTimeout(refreshDetailsActivity, 250);
  }

  async function enterActivity() {
    act.active = true;
    refreshActivity();
    act.timer = setInterval(() => { refreshActivity(); }, 5000);
    act.tick = setInterval(renderInflightTable, 1000);
    renderInflightTable();
    const can = await hasApi('/api/inflight');
    act.canCancel = can;
    const note = $('inflight-note');
    note.hidden = can;
    note.textContent = can ? '' : 'This daemon has no /api/inflight: requests cannot be cancelled from here.';
    renderInflightTable();
  }

  function leaveActivity() {
    act.active = false;
    clearInterval(act.timer);
    clearInterval(act.tick);
    clearTimeout(act.debounce);
  }

  // ---------------------------------------------------------------------------------------
  // Performance page: /api/performance (host and GPU samples) and tokens/s over time

  const perf = { timer: 0, after: '', sys: [], gpu: [], active: false, seq: 0 };
  const PERF_KEEP = 720;

  // A host sample under either naming (the original's *_mb, or bytes).
  function normSys(s) {
    const mb = (b, m) => (typeof b === 'number' ? b : typeof m === 'number' ? m * 1048576 : -1);
    const cores = Array.isArray(s.cpu_util_per_core) ? s.cpu_util_per_core : [];
    return {
      t: toMs(pick(s.unix_ms, s.timestamp, s.time)),
      cpu: typeof s.cpu_util_pct === 'number' ? s.cpu_util_pct : cores.length ? cores.reduce((a, b) => a + b, 0) / cores.length : -1,
      memUsed: mb(s.mem_used_bytes, s.mem_used_mb),
      memTotal: mb(s.mem_total_bytes, s.mem_total_mb),
      load1: num(s.load_avg_1),
    };
  }
  function normGpu(g) {
    const mb = (b, m) => (typeof b === 'number' ? b : typeof m === 'number' ? m * 1048576 : -1);
    return {
      t: toMs(pick(g.unix_ms, g.timestamp, g.time)),
      id: pick(g.index, g.id, 0),
      name: g.name || 'GPU',
      util: num(g.gpu_util_pct),
      memUsed: mb(g.mem_used_bytes, g.mem_used_mb),
      memTotal: mb(g.mem_total_bytes, g.mem_total_mb),
      temp: num(g.temp_c),
      power: num(g.power_draw_w),
    };
  }

  function setPerfState(state, text) {
    const s = $('perf-state');
    s.dataset.state = state;
    s.textContent = text;
  }

  async function refreshPerf() {
    const seq = ++perf.seq;
    const msg = $('perf-msg');
    try {
      const r = await api('/api/performance' + (perf.after ? '?after=' + encodeURIComponent(perf.after) : ''));
      if (seq !== perf.seq) return;
      if (r.status === 404 || r.status === 405) {
        setPerfState('missing', 'not available');
        showMsg(msg, 'This daemon has no /api/performance: host and GPU charts need a newer llama-swap.');
      } else if (r.status === 503) {
        setPerfState('disabled', 'sampler disabled');
        showMsg(msg, 'The performance sampler is disabled (' + (await errorText(r)) + '). Enable it with the performance key in the config, then systemctl reload llama-swap.');
      } else if (!r.ok) {
        throw new Error(await errorText(r));
      } else {
        const j = await r.json();
        if (seq !== perf.seq) return;
        showMsg(msg, '');
        setPerfState('live', 'live');
        const sys = (j.sys_stats || j.sys || j.host || []).map(normSys).filter((s) => s.t);
        const gpu = (j.gpu_stats || j.gpus || []).map(normGpu).filter((g) => g.t);
        const lastT = (arr) => arr.reduce((m, x) => Math.max(m, x.t), 0);
        const seenSys = lastT(perf.sys);
        const seenGpu = lastT(perf.gpu);
        perf.sys.push(...sys.filter((s) => s.t > seenSys));
        perf.gpu.push(...gpu.filter((g) => g.t > seenGpu));
        perf.sys = perf.sys.slice(-PERF_KEEP);
        perf.gpu = perf.gpu.slice(-PERF_KEEP * 8);
        const newest = Math.max(lastT(perf.sys), lastT(perf.gpu));
        if (newest) perf.after = new Date(newest).toISOString();
        drawPerf();
      }
    } catch (e) {
      if (seq === perf.seq) setPerfState('error', 'error: ' + e.message);
    }
    refreshTpsOverTime();
  }

  function drawPerf() {
    const sys = perf.sys;
    const pts = (arr, f) => arr.map((s) => ({ x: s.t, y: f(s) })).filter((p) => p.y >= 0);
    drawChart('chart-cpu', 'time', null, [{ label: 'CPU %', data: pts(sys, (s) => s.cpu) }]);
    drawChart('chart-mem', 'time', null, [
      { label: 'used', data: pts(sys, (s) => (s.memUsed >= 0 ? s.memUsed / 1073741824 : -1)) },
    ]);
    const byGpu = new Map();
    for (const g of perf.gpu) {
      if (!byGpu.has(g.id)) byGpu.set(g.id, []);
      byGpu.get(g.id).push(g);
    }
    const gpus = Array.from(byGpu.entries());
    // No GPU (or none the sampler can read): no empty GPU charts.
    for (const id of ['chart-gpumem', 'chart-gpuutil']) $(id).closest('figure').hidden = gpus.length === 0;
    drawChart('chart-gpumem', 'time', null, gpus.map(([id, arr]) => ({
      label: 'GPU ' + id, data: pts(arr, (g) => (g.memUsed >= 0 ? g.memUsed / 1073741824 : -1)) })));
    drawChart('chart-gpuutil', 'time', null, gpus.map(([id, arr]) => ({ label: 'GPU ' + id, data: pts(arr, (g) => g.util) })));
    const last = sys[sys.length - 1];
    const cards = [];
    const card = (label, value, key) => cards.push(el('div', { class: 'card', 'data-stat': key }, el('div', { class: 'label' }, label), el('div', { class: 'value' }, value)));
    if (last) {
      card('CPU', last.cpu >= 0 ? last.cpu.toFixed(0) + ' %' : '–', 'cpu');
      card('Memory', fmtBytes(last.memUsed) + ' of ' + fmtBytes(last.memTotal), 'memory');
      if (last.load1 >= 0) card('Load (1 min)', last.load1.toFixed(2), 'load');
    }
    if (last && !gpus.length) card('GPUs', 'none seen by the sampler', 'gpus');
    for (const [id, arr] of gpus) {
      const g = arr[arr.length - 1];
      card('GPU ' + id + ' · ' + g.name, fmtBytes(g.memUsed) + ' of ' + fmtBytes(g.memTotal) + (g.util >= 0 ? ' · ' + g.util.toFixed(0) + ' %' : ''), 'gpu-' + id);
    }
    $('perf-cards').replaceChildren(...cards);
  }

  async function refreshTpsOverTime() {
    try {
      const r = await api('/api/metrics/activity?limit=999');
      if (!r.ok) return;
      const j = await r.json();
      const recs = (Array.isArray(j.data) ? j.data : []).map(normRecord).filter((a) => a.tokens_per_second >= 0 && a.time);
      const byModel = new Map();
      for (const a of recs.reverse()) {
        if (!byModel.has(a.model)) byModel.set(a.model, []);
        byModel.get(a.model).push({ x: a.time, y: a.tokens_per_second });
      }
      drawChart('chart-tps-time', 'scatter', null, Array.from(byModel.entries()).map(([m, data]) => ({ label: m, data })));
    } catch (_) { /* the chart keeps its last points */ }
  }

  // ---------------------------------------------------------------------------------------
  // Playground: chat (markdown, code highlighting, system prompt, parameters, streaming)
  // and the other kinds of request the model's capabilities name

  const pg = { messages: [], ctrl: null, listed: [], records: [], mode: 'chat' };
  const MODE_CAPS = {
    speech: (c) => c.audio_output || c.audio_speech,
    transcribe: (c) => c.audio_input || c.audio_transcriptions,
    images: (c) => c.image_output || c.image_generation,
    rerank: (c) => c.reranker,
  };

  async function refreshPgModels() {
    try {
      const r = await api('/v1/models');
      if (!r.ok) throw new Error(await errorText(r));
      const j = await r.json();
      pg.records = (Array.isArray(j.data) ? j.data : []).filter((m) => m && typeof m.id === 'string');
      checkOpenApi(!apiKey);
      fillPgModels();
    } catch (e) {
      showMsg($('pg-error'), 'Could not list the models: ' + e.message);
    }
  }

  // The models for the current mode: those whose capabilities name it first (all of them
  // when none does, as capabilities are optional in the config).
  function fillPgModels() {
    const sel = $('pg-model');
    const f = MODE_CAPS[pg.mode];
    let list = pg.records;
    let note = '';
    if (f) {
      const fit = list.filter((m) => f(m.capabilities || {}));
      if (fit.length) list = fit.concat(list.filter((m) => !fit.includes(m)));
      else note = 'No model declares this capability (capabilities in the config): all models are listed.';
    }
    const ids = list.map((m) => m.id);
    if (!(ids.length === pg.listed.length && ids.every((v, i) => v === pg.listed[i]))) {
      pg.listed = ids;
      const value = sel.value;
      sel.replaceChildren(...ids.map((id) => el('option', { value: id }, id)));
      if (ids.includes(value)) sel.value = value;
    }
    const rec = pg.records.find((m) => m.id === sel.value);
    const caps = rec && rec.capabilities ? Object.keys(rec.capabilities).filter((k) => rec.capabilities[k]) : [];
    $('pg-caps').textContent = note || (caps.length ? 'Capabilities: ' + caps.join(', ') : '');
  }

  function setMode(mode) {
    pg.mode = mode;
    for (const b of document.querySelectorAll('[data-mode]')) b.setAttribute('aria-selected', String(b.dataset.mode === mode));
    $('pg-chat').hidden = mode !== 'chat';
    for (const m of ['speech', 'transcribe', 'images', 'rerank']) $('pg-' + m).hidden = mode !== m;
    fillPgModels();
  }

  function setPgStatus(state, text) {
    const s = $('pg-status');
    s.dataset.state = state;
    s.textContent = text;
  }

  function addMessage(role, text) {
    const body = el('div', { class: 'msg-text' });
    if (role === 'assistant' && text) renderMarkdown(body, text, true);
    else body.textContent = text || '';
    const box = el('div', { class: 'msg-' + role, dataset: { role } },
      el('div', { class: 'msg-role' }, role), body);
    $('pg-conversation').append(box);
    return { box, body };
  }

  function scrollConversation() {
    const c = $('pg-conversation');
    c.scrollTop = c.scrollHeight;
  }

  function numberParam(id) {
    const v = $(id).value.trim();
    if (v === '') return undefined;
    const n = Number(v);
    return isFinite(n) ? n : undefined;
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
    let content = '';
    let reasoning = null;
    let renderPending = 0;
    const render = (final) => {
      renderPending = 0;
      renderMarkdown(out.body, content, final);
      scrollConversation();
    };
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
    let streaming = false;
    try {
      const system = $('pg-system').value.trim();
      const body = {
        model, stream: true, stream_options: { include_usage: true },
        messages: (system ? [{ role: 'system', content: system }] : []).concat(history),
      };
      const params = { temperature: numberParam('pg-temperature'), max_tokens: numberParam('pg-max-tokens'), top_p: numberParam('pg-top-p') };
      for (const [k, v] of Object.entries(params)) if (v !== undefined) body[k] = v;
      const r = await api('/v1/chat/completions', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', Accept: 'text/event-stream' },
        body: JSON.stringify(body),
        signal: ctrl.signal,
      });
      if (!r.ok) throw new Error(await errorText(r));
      setPgStatus('streaming', 'streaming…');
      streaming = true;
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
        const think = delta.reasoning_content || delta.reasoning;
        if (typeof think === 'string' && think) {
          if (!reasoning) {
            reasoning = el('details', { class: 'reasoning', 'data-testid': 'pg-reasoning', open: true }, el('summary', null, 'reasoning'));
            out.box.insertBefore(reasoning, out.body);
          }
          reasoning.append(document.createTextNode(think));
        }
        if (typeof delta.content === 'string' && delta.content) {
          if (!tFirst) tFirst = performance.now();
          chunks++;
          content += delta.content;
          setPgStatus('streaming', 'streaming… ' + chunks + ' chunks');
          if (!renderPending) renderPending = requestAnimationFrame(() => render(false));
        }
      });
      if (failed) throw new Error(failed);
      if (!done && !usage && !timings) {
        // The body ended cleanly but without the end of an OpenAI stream.
        throw new Error('stream cut after ' + chunks + ' tokens: the reply ended without [DONE]');
      }
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
        out.box.classList.add('failed');
        let m = e.message || String(e);
        if (streaming && !/^stream cut/.test(m) && (e instanceof TypeError || !failed)) {
          // The connection broke mid-reply: say so, and why if the daemon knows.
          m = 'stream cut after ' + chunks + ' tokens: ' + (await cutCause(model, m));
        }
        showMsg($('pg-error'), m);
        setPgStatus('error', 'failed');
      }
    } finally {
      if (renderPending) cancelAnimationFrame(renderPending);
      render(true);
      pg.ctrl = null;
      if (content) history.push({ role: 'assistant', content });
      else history.pop(); // nothing came back: the question can be asked again
      $('pg-send').disabled = false;
      $('pg-stop').disabled = true;
    }
  }

  // Why a reply broke off: the model's state and error in /running, else its last log line.
  async function cutCause(model, fallback) {
    const why = ['the connection closed before the reply ended (' + fallback + ')'];
    try {
      await sleep(300);
      const r = await api('/running');
      if (r.ok) {
        const j = await r.json();
        const list = Array.isArray(j.running) ? j.running : [];
        const m = list.find((x) => x && x.model === model);
        if (!m) why.push('the model is no longer running');
        else if (m.error) why.push('model ' + m.state + ': ' + m.error);
        else if (m.state && m.state !== 'ready') why.push('the model is ' + m.state);
      }
    } catch (_) { /* nothing more to say */ }
    return why.join('; ');
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

  // The other modalities: one request each, the answer shown below it.
  async function modalRequest(statusId, fn) {
    const s = $(statusId);
    const model = $('pg-model').value;
    if (!model) { s.textContent = 'Choose a model first.'; return; }
    s.textContent = 'waiting for ' + model + '…';
    s.dataset.state = 'waiting';
    const t0 = performance.now();
    try {
      await fn(model);
      s.textContent = 'done in ' + ((performance.now() - t0) / 1000).toFixed(2) + ' s';
      s.dataset.state = 'done';
    } catch (e) {
      s.textContent = 'failed: ' + (e.message || e);
      s.dataset.state = 'error';
    }
  }

  async function speak(model) {
    const r = await api('/v1/audio/speech', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, input: $('sp-input').value, voice: $('sp-voice').value.trim() || undefined }),
    });
    if (!r.ok) throw new Error(await errorText(r));
    const blob = await r.blob();
    const a = $('sp-audio');
    if (a.src) URL.revokeObjectURL(a.src);
    a.src = URL.createObjectURL(blob);
    a.hidden = false;
  }

  async function transcribe(model) {
    const f = $('tr-file').files[0];
    if (!f) throw new Error('choose an audio file');
    const form = new FormData();
    form.append('model', model);
    form.append('file', f, f.name);
    const r = await api('/v1/audio/transcriptions', { method: 'POST', body: form });
    if (!r.ok) throw new Error(await errorText(r));
    const text = await r.text();
    let out = text;
    try { const j = JSON.parse(text); if (typeof j.text === 'string') out = j.text; } catch (_) { /* plain text */ }
    $('tr-output').textContent = out;
    $('tr-output').hidden = false;
  }

  async function generateImage(model) {
    const r = await api('/v1/images/generations', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, prompt: $('im-prompt').value, size: $('im-size').value, n: 1, response_format: 'b64_json' }),
    });
    if (!r.ok) throw new Error(await errorText(r));
    const j = await r.json();
    const imgs = (j.data || []).map((d) => {
      if (d.b64_json) return el('img', { src: 'data:image/png;base64,' + d.b64_json, alt: $('im-prompt').value });
      return el('p', null, 'The server answered with a URL, which this page does not load: ' + (d.url || '?'));
    });
    if (!imgs.length) throw new Error('no image in the answer');
    $('im-output').replaceChildren(...imgs);
  }

  async function rerank(model) {
    const docs = $('rr-docs').value.split('\n').map((x) => x.trim()).filter(Boolean);
    if (!docs.length) throw new Error('enter some documents');
    const r = await api('/v1/rerank', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ model, query: $('rr-query').value, documents: docs }),
    });
    if (!r.ok) throw new Error(await errorText(r));
    const j = await r.json();
    const results = (j.results || j.data || []).slice().sort((a, b) => (b.relevance_score || 0) - (a.relevance_score || 0));
    $('rr-body').replaceChildren(...results.map((x, i) => el('tr', { 'data-testid': 'rr-row' },
      el('td', { class: 'num' }, String(i + 1)),
      el('td', { class: 'num' }, typeof x.relevance_score === 'number' ? x.relevance_score.toFixed(4) : '–'),
      el('td', null, docs[x.index] !== undefined ? docs[x.index] : (x.document && x.document.text) || ''))));
  }

  // ---------------------------------------------------------------------------------------
  // A warning when the API answers without a key to a page opened from another machine.

  function isLoopback(host) {
    return host === 'localhost' || /^127\./.test(host) || host === '[::1]' || host === '::1' || host.endsWith('.localhost');
  }
  let bannerDismissed = false;
  function checkOpenApi(withoutKey) {
    if (!withoutKey || bannerDismissed) return;
    $('banner-open').hidden = isLoopback(location.hostname);
  }
  async function probeOpenApi() {
    if (apiKey || isLoopback(location.hostname)) return;
    try {
      const r = await fetch(BASE + '/v1/models', { cache: 'no-store', credentials: 'omit' });
      try { await r.body?.cancel(); } catch (_) { /* no body */ }
      if (r.ok) checkOpenApi(true);
    } catch (_) { /* unreachable: no warning */ }
  }

  // ---------------------------------------------------------------------------------------
  // About: versions and the libraries' licenses

  async function openAbout() {
    const version = (lib, key) => (lib ? String(lib[key] || '') || ' ' : '');
    const libs = [
      ['Chart.js', version(LIBS.chart(), 'version'), 'license-chart.txt', 'libjs-chart.js', 'MIT'],
      ['marked', version(LIBS.marked(), 'version'), 'license-marked.txt', 'libjs-marked', 'MIT'],
      ['highlight.js', version(LIBS.hljs(), 'versionString'), 'license-highlight.txt', 'libjs-highlight.js', 'BSD-3-Clause'],
    ];
    $('about-libs').replaceChildren(...libs.map(([name, ver, lic, pkg, spdx]) => el('li', { 'data-lib': name },
      ver ? el('span', null, (name + ' ' + ver).trim() + ' (' + spdx + ', from ' + pkg + ') — ',
        el('a', { href: lic, target: '_blank', rel: 'noopener', 'data-testid': 'license-link' }, 'license'))
        : el('span', { class: 'muted' }, name + ': not built in (install ' + pkg + ' and rebuild)'))));
    $('about-dialog').showModal();
    try {
      const r = await api('/api/version');
      if (r.ok) {
        const j = await r.json();
        $('about-version').textContent = 'llama-swap ' + (j.version || '') + (j.commit ? ' (' + j.commit + ')' : '') + (j.build_date ? ', built ' + j.build_date : '');
      }
    } catch (_) { /* an older daemon */ }
  }

  // ---------------------------------------------------------------------------------------
  // Wiring

  function init() {
    applyTheme(storedTheme());
    if (window.matchMedia) {
      matchMedia('(prefers-color-scheme: dark)').addEventListener('change', () => { if (!storedTheme()) applyTheme(''); });
    }
    $('theme-toggle').addEventListener('click', toggleTheme);
    $('nav-toggle').addEventListener('click', () => {
      const open = $('nav').classList.toggle('open');
      $('nav-toggle').setAttribute('aria-expanded', String(open));
    });
    $('about-button').addEventListener('click', openAbout);
    $('about-close').addEventListener('click', () => $('about-dialog').close());
    $('capture-close').addEventListener('click', () => $('capture-dialog').close());
    $('banner-open-close').addEventListener('click', () => { bannerDismissed = true; $('banner-open').hidden = true; });
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
    $('d-load').addEventListener('click', () => details.id && loadModel(details.id));
    $('d-unload').addEventListener('click', () => details.id && unloadModel(details.id));
    for (const b of document.querySelectorAll('#model-details [role="tab"]')) b.addEventListener('click', () => setDetailsTab(b.dataset.tab));
    details.log = new LogView($('d-logs'), $('d-log-state'));

    logPage = new LogView($('log-view'), $('log-state'), { onFollow: (f) => { $('log-bottom').hidden = f; } });
    const startLogPage = () => { $('log-bottom').hidden = true; logPage.start($('log-source').value); };
    $('log-source').addEventListener('change', () => { if (current === 'logs') startLogPage(); });
    $('log-filter').addEventListener('input', (e) => logPage.setFilter(e.target.value));
    $('log-wrap').addEventListener('change', (e) => $('log-view').classList.toggle('wrap', e.target.checked));
    $('log-clear').addEventListener('click', () => $('log-view').replaceChildren());
    $('log-bottom').addEventListener('click', () => { logPage.bottom(); $('log-bottom').hidden = true; });

    $('activity-model').addEventListener('change', () => { act.page = 1; refreshActivity(); });
    $('activity-limit').addEventListener('change', () => { act.page = 1; refreshActivity(); });
    $('activity-prev').addEventListener('click', () => { if (act.page > 1) { act.page--; refreshActivity(); } });
    $('activity-next').addEventListener('click', () => { act.page++; refreshActivity(); });
    $('activity-refresh').addEventListener('click', refreshActivity);
    $('export-csv').addEventListener('click', () => exportActivity('csv'));
    $('export-json').addEventListener('click', () => exportActivity('json'));

    $('pg-form').addEventListener('submit', (e) => { e.preventDefault(); send(); });
    $('pg-input').addEventListener('keydown', (e) => {
      if (e.key === 'Enter' && (e.ctrlKey || e.metaKey)) { e.preventDefault(); send(); }
    });
    $('pg-stop').addEventListener('click', stopSend);
    $('pg-clear').addEventListener('click', clearChat);
    $('pg-models-refresh').addEventListener('click', refreshPgModels);
    $('pg-model').addEventListener('change', fillPgModels);
    for (const b of document.querySelectorAll('[data-mode]')) b.addEventListener('click', () => setMode(b.dataset.mode));
    $('pg-speech').addEventListener('submit', (e) => { e.preventDefault(); modalRequest('sp-status', speak); });
    $('pg-transcribe').addEventListener('submit', (e) => { e.preventDefault(); modalRequest('tr-status', transcribe); });
    $('pg-images').addEventListener('submit', (e) => { e.preventDefault(); modalRequest('im-status', generateImage); });
    $('pg-rerank').addEventListener('submit', (e) => { e.preventDefault(); modalRequest('rr-status', rerank); });
    $('pg-markdown').addEventListener('change', () => {
      for (const m of document.querySelectorAll('#pg-conversation .msg-assistant .msg-text')) {
        const i = Array.from(document.querySelectorAll('#pg-conversation .msg-assistant .msg-text')).indexOf(m);
        const msgs = pg.messages.filter((x) => x.role === 'assistant');
        if (msgs[i]) renderMarkdown(m, msgs[i].content, true);
      }
    });

    listeners.models.push(renderModels, () => {
      syncModelOptions($('log-source'), 3);
      syncModelOptions($('activity-model'), 1);
    });
    listeners.inflight.push(renderInflightCounts, renderInflightTable);

    pageHooks.models = { enter: enterModels, leave: leaveModels };
    pageHooks.logs = { enter: startLogPage, leave: () => logPage.stop() };
    pageHooks.activity = { enter: enterActivity, leave: leaveActivity };
    pageHooks.performance = {
      enter() {
        perf.active = true;
        refreshPerf();
        perf.timer = setInterval(refreshPerf, 5000);
      },
      leave() {
        perf.active = false;
        clearInterval(perf.timer);
      },
    };
    pageHooks.playground = { enter: refreshPgModels };

    window.addEventListener('hashchange', route);
    route();
    runEvents();
    probeOpenApi();
  }

  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', init);
  else init();
})();
