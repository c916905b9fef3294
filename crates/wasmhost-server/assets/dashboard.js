// wasmhost dashboard: a single page over the HTTP API (docs/serve.md).
// Plain modern JavaScript, no framework, no build step, nothing from outside
// (jco's bundle is built from a package-lock by scripts/build-jco.sh and
// served by the same server; it is loaded only when a component is run).
//
//   modules   GET/POST/DELETE /api/v1/modules…, refreshed every 5 s
//   inspect   GET /api/v1/modules/{ref}; call: POST …/call/{function}
//   browser   GET …/wasm, run here (core: WebAssembly.instantiate; component:
//             transpiled by jco, /assets/jco-bundle.js) beside the same call on the server
//   live      GET /metrics (Prometheus text) every 2 s, drawn on canvases
//   actors    GET /api/v1/actors, refreshed every 5 s
//   cluster   GET /api/v1/cluster (the panel shows only in a cluster), every 5 s

const $ = (selector) => document.querySelector(selector);

const TOKEN_KEY = 'wasmhost.token';
const MODULES_EVERY_MS = 5000;
const ACTORS_EVERY_MS = 5000;
const METRICS_EVERY_MS = 2000;
const CHART_POINTS = 90; // 3 minutes at one scrape every 2 s

const state = {
  modules: [],
  modulesKey: '',
  selected: null, // reference of the selected module
  detail: null, // its inspection
  inspectSeq: 0,
  wasm: new Map(), // digest -> Promise<{key, bytes}> of GET …/wasm
  actorsKey: '',
};

// ---------------------------------------------------------------------------
// Formatting

function fmtBytes(n) {
  if (n == null || Number.isNaN(Number(n))) return '–';
  n = Number(n);
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) {
    n /= 1024;
    i += 1;
  }
  return `${i === 0 ? n : n.toFixed(n < 10 ? 2 : 1)} ${units[i]}`;
}

function fmtMicros(us) {
  if (us == null || Number.isNaN(Number(us))) return '–';
  us = Number(us);
  if (us < 1000) return `${us < 10 ? us.toFixed(1).replace(/\.0$/, '') : Math.round(us)} µs`;
  if (us < 1e6) return `${(us / 1000).toFixed(us < 1e4 ? 2 : 1)} ms`;
  return `${(us / 1e6).toFixed(2)} s`;
}

const fmtSeconds = (s) => (s == null ? '–' : fmtMicros(s * 1e6));
const fmtMillis = (ms) => (ms == null ? '–' : fmtMicros(ms * 1000));

function fmtCount(n) {
  if (n == null || n === '') return '–';
  const v = Number(n);
  return Number.isFinite(v) ? v.toLocaleString('en-US') : String(n);
}

function fmtRate(r) {
  if (r == null) return '–';
  if (r === 0) return '0';
  if (r < 10) return r.toFixed(2);
  if (r < 100) return r.toFixed(1);
  return Math.round(r).toLocaleString('en-US');
}

function fmtDuration(ms) {
  if (ms == null) return '–';
  const s = ms / 1000;
  if (s < 1) return `${Math.round(ms)} ms`;
  if (s < 60) return `${s.toFixed(1)} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`;
  return `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min`;
}

function fmtDate(value) {
  if (!value) return '';
  const d = typeof value === 'number' ? new Date(value * (value < 1e12 ? 1000 : 1)) : new Date(value);
  return Number.isNaN(d.getTime()) ? String(value) : d.toLocaleString();
}

const shortDigest = (d) => (d ? `${String(d).replace(/^sha256:/, '').slice(0, 12)}…` : '');

/** `name:tag` in a URL path: `/` and the rest escaped, `:` kept readable. */
const refPath = (ref) => encodeURIComponent(ref).replace(/%3A/gi, ':');

function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else if (key === 'dataset') Object.assign(node.dataset, value);
    else if (key.startsWith('on')) node.addEventListener(key.slice(2), value);
    else node.setAttribute(key, value === true ? '' : value);
  }
  for (const child of children.flat()) {
    if (child != null) node.append(child);
  }
  return node;
}

function setText(selector, text, cls) {
  const node = $(selector);
  node.textContent = text;
  if (cls !== undefined) node.className = cls;
  return node;
}

// ---------------------------------------------------------------------------
// The API

class ApiError extends Error {
  constructor(status, code, message, headers) {
    super(message);
    this.status = status;
    this.code = code;
    this.headers = headers ?? new Headers();
  }

  /** `error[code]: message (HTTP status)`, as the CLI prints errors. */
  describe() {
    const http = this.status ? ` (HTTP ${this.status})` : '';
    return `error[${this.code}]: ${this.message}${http}`;
  }
}

const token = () => localStorage.getItem(TOKEN_KEY) ?? '';

function setServerUp(up) {
  const node = $('#server-status');
  node.dataset.state = up ? 'up' : 'down';
  node.textContent = up ? 'connected' : 'server unreachable';
}

function showAuthNeeded(show) {
  const banner = $('#auth-message');
  banner.hidden = !show;
  if (show) {
    banner.textContent = token()
      ? 'this server needs a token: the one given was refused'
      : 'this server needs a token: enter it at the top right';
  }
}

async function errorOf(res) {
  const text = await res.text().catch(() => '');
  let code = `http_${res.status}`;
  let message = text.trim() || res.statusText || 'request failed';
  try {
    const body = JSON.parse(text);
    if (body && body.error) {
      code = body.error.code ?? code;
      message = body.error.message ?? message;
    }
  } catch {
    // not JSON: keep the text
  }
  return new ApiError(res.status, code, message, res.headers);
}

/**
 * fetch() against the API. `write` sends the token. Resolves to the Response
 * when it is 2xx, otherwise throws an ApiError carrying the server's code.
 */
async function api(method, path, { body, headers, write = false } = {}) {
  const h = new Headers(headers);
  if (write && token()) h.set('Authorization', `Bearer ${token()}`);
  let res;
  try {
    res = await fetch(path, { method, body, headers: h, cache: 'no-store' });
  } catch (e) {
    setServerUp(false);
    throw new ApiError(0, 'unreachable', `the server did not answer (${e.message})`);
  }
  setServerUp(true);
  if (res.status === 401) {
    showAuthNeeded(true);
    const err = await errorOf(res);
    err.detail = err.message;
    err.message = 'this server needs a token';
    throw err;
  }
  if (!res.ok) throw await errorOf(res);
  if (write) showAuthNeeded(false);
  return res;
}

// ---------------------------------------------------------------------------
// Modules: list, upload, delete

async function refreshModules() {
  let modules;
  try {
    const res = await api('GET', '/api/v1/modules');
    modules = (await res.json()).modules ?? [];
  } catch (e) {
    setText('#modules-count', e.describe ? e.describe() : String(e), 'muted error');
    return;
  }
  modules.sort((a, b) => String(a.reference).localeCompare(String(b.reference)));
  const key = JSON.stringify(modules);
  if (key === state.modulesKey) return;
  state.modulesKey = key;
  state.modules = modules;
  renderModules();
  if (state.selected && !modules.some((m) => m.reference === state.selected)) {
    clearSelection();
  }
}

function renderModules() {
  const list = $('#modules');
  list.replaceChildren(
    ...state.modules.map((m) => {
      const del = el('button', {
        type: 'button',
        class: 'small ghost delete',
        title: `delete ${m.reference}`,
        'data-testid': 'module-delete',
        text: 'delete',
        onclick: (event) => {
          event.stopPropagation();
          deleteModule(m.reference, del);
        },
      });
      const item = el(
        'li',
        {
          tabindex: 0,
          role: 'option',
          'aria-selected': String(m.reference === state.selected),
          class: m.reference === state.selected ? 'selected' : '',
          'data-testid': 'module',
          dataset: { ref: m.reference, kind: m.kind ?? '', digest: m.digest ?? '' },
          onclick: () => selectModule(m.reference),
          onkeydown: (event) => {
            if (event.key === 'Enter' || event.key === ' ') {
              event.preventDefault();
              selectModule(m.reference);
            }
          },
        },
        el('span', { class: 'ref', text: m.reference }),
        el('span', { class: 'actions' }, el('span', { class: `badge ${m.kind ?? ''}`, text: m.kind ?? '?' }), del),
        el('span', {
          class: 'meta',
          title: `${m.digest ?? ''}${m.created ? `\ncreated ${fmtDate(m.created)}` : ''}`,
          text: `${shortDigest(m.digest)} · ${fmtBytes(m.size)}`,
        }),
      );
      return item;
    }),
  );
  list.setAttribute('role', 'listbox');
  $('#modules-empty').hidden = state.modules.length > 0;
  setText('#modules-count', `${state.modules.length} in the store`, 'muted');
}

function markSelected() {
  for (const li of document.querySelectorAll('#modules li')) {
    const on = li.dataset.ref === state.selected;
    li.classList.toggle('selected', on);
    li.setAttribute('aria-selected', String(on));
  }
}

/** A default module name from a file name: `My Module.wasm` -> `my-module`. */
function nameFromFile(fileName) {
  const base = fileName.replace(/\.(wasm|wat|json)$/i, '').toLowerCase();
  const name = base.replace(/[^a-z0-9._-]+/g, '-').replace(/^[^a-z0-9]+/, '').replace(/-+$/, '');
  return name || 'module';
}

/** Whether a chosen file is a packet manifest (JSON with base64 modules) rather than wasm or WAT. */
const isPacketFile = (file) => /\.json$/i.test(file.name) || file.type === 'application/json';

/** A packet's own `name`, as a module name, when it has one. */
async function packetName(file) {
  try {
    const name = JSON.parse(await file.text())?.name;
    return typeof name === 'string' && name.trim() ? nameFromFile(name) : null;
  } catch {
    return null; // the server says what is wrong with it
  }
}

async function upload(event) {
  event.preventDefault();
  const file = $('#upload-file').files[0];
  const status = $('#upload-status');
  if (!file) {
    setText('#upload-status', 'choose a .wasm, .wat or packet .json file first', 'note error');
    return;
  }
  const packet = isPacketFile(file);
  const name = $('#upload-name').value.trim() || (packet && (await packetName(file))) || nameFromFile(file.name);
  const tag = $('#upload-tag').value.trim() || 'latest';
  const bytes = new Uint8Array(await file.arrayBuffer());
  const isBinary = bytes.length >= 4 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
  const type = packet ? 'application/json' : isBinary ? 'application/wasm' : 'text/plain; charset=utf-8';
  const button = $('#upload-button');
  button.disabled = true;
  setText('#upload-status', `uploading ${file.name} (${fmtBytes(bytes.length)})…`, 'note');
  try {
    const params = new URLSearchParams({ name, tag });
    const res = await api('POST', `/api/v1/modules?${params}`, {
      body: bytes,
      headers: { 'Content-Type': type },
      write: true,
    });
    const made = await res.json().catch(() => ({}));
    const ref = made.reference ?? `${name}:${tag}`;
    const from = made.packet
      ? ` from packet ${made.packet.name ?? file.name}${made.packet.lrl ? ` (${made.packet.lrl}, world ${made.packet.worldVersion})` : ''}`
      : '';
    status.textContent = `uploaded ${ref}${from} (${made.kind ?? '?'}, ${fmtBytes(made.size)}, ${shortDigest(made.digest)})`;
    status.className = 'note ok';
    status.dataset.result = 'ok';
    status.title = '';
    state.modulesKey = '';
    await refreshModules();
    selectModule(ref);
  } catch (e) {
    status.textContent = e.status === 401 ? `upload refused: ${e.message}` : `upload failed: ${e.describe()}`;
    status.title = e.detail ?? '';
    status.className = 'note error';
    status.dataset.result = 'error';
  } finally {
    button.disabled = false;
  }
}

/** Deletes after a second click on the same button within 3 s. */
async function deleteModule(ref, button) {
  if (button.dataset.armed !== 'true') {
    button.dataset.armed = 'true';
    button.textContent = 'sure?';
    setTimeout(() => {
      button.dataset.armed = '';
      button.textContent = 'delete';
    }, 3000);
    return;
  }
  button.disabled = true;
  try {
    await api('DELETE', `/api/v1/modules/${refPath(ref)}`, { write: true });
    setText('#upload-status', `deleted ${ref}`, 'note ok');
    if (state.selected === ref) clearSelection();
    state.modulesKey = '';
    await refreshModules();
  } catch (e) {
    setText('#upload-status', `delete failed: ${e.describe()}`, 'note error');
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// The selected module: inspect

function clearSelection() {
  state.selected = null;
  state.detail = null;
  state.inspectSeq += 1;
  markSelected();
  $('#module-detail').hidden = true;
  $('#module-placeholder').hidden = false;
  $('#module-kind').hidden = true;
  setText('#module-title', 'No module selected');
}

async function selectModule(ref) {
  state.selected = ref;
  markSelected();
  const seq = ++state.inspectSeq;
  setText('#module-title', ref);
  $('#module-placeholder').hidden = true;
  let detail;
  try {
    const res = await api('GET', `/api/v1/modules/${refPath(ref)}`);
    detail = await res.json();
  } catch (e) {
    if (seq !== state.inspectSeq) return;
    $('#module-detail').hidden = true;
    $('#module-placeholder').hidden = false;
    setText('#module-placeholder', `inspect failed: ${e.describe()}`, 'muted error');
    return;
  }
  if (seq !== state.inspectSeq) return; // another module was selected meanwhile
  state.detail = detail;
  renderDetail(detail);
}

function describeItem(item) {
  if (item == null) return '';
  if (typeof item === 'string') return item;
  const where = [item.module, item.name].filter((x) => x != null && x !== '').join('.');
  const type = item.type ?? item.signature ?? item.kind ?? '';
  return where ? `${where}${type ? `: ${type}` : ''}` : JSON.stringify(item);
}

function renderDetail(d) {
  const listed = state.modules.find((m) => m.reference === state.selected) ?? {};
  const functions = d.functions ?? [];
  const conventions = [...new Set(functions.flatMap((f) => f.conventions ?? []))];
  const kind = d.kind ?? listed.kind ?? '?';

  $('#module-placeholder').hidden = true;
  $('#module-detail').hidden = false;
  $('#module-detail').dataset.kind = kind;
  const badge = $('#module-kind');
  badge.hidden = false;
  badge.textContent = kind;
  badge.className = `badge ${kind}`;

  const facts = [
    ['reference', d.reference ?? state.selected],
    ['digest', d.digest ?? listed.digest],
    ['size', fmtBytes(d.size ?? listed.size)],
    ['created', listed.created ? fmtDate(listed.created) : null],
    ['conventions', conventions.join(', ') || '–'],
    ['imports', String((d.imports ?? []).length)],
  ].filter(([, v]) => v != null);
  $('#module-info').replaceChildren(...facts.flatMap(([k, v]) => [el('dt', { text: k }), el('dd', { text: v })]));

  const items = (list) =>
    list.length ? list.map((x) => el('li', { text: describeItem(x) })) : [el('li', { class: 'muted', text: 'none' })];
  $('#module-imports').replaceChildren(...items(d.imports ?? []));
  $('#module-exports').replaceChildren(...items(d.exports ?? []));

  const tbody = $('#functions tbody');
  tbody.replaceChildren(
    ...functions.map((f) =>
      el(
        'tr',
        { dataset: { function: f.name }, 'data-testid': 'function-row', onclick: () => chooseFunction(f.name) },
        el('td', { class: 'mono', text: f.name }),
        el('td', { class: 'mono', text: f.signature ?? '' }),
        el('td', {}, ...(f.conventions ?? []).map((c) => el('span', { class: 'badge', text: c }))),
      ),
    ),
  );
  if (!functions.length) {
    tbody.append(el('tr', {}, el('td', { colspan: 3, class: 'muted', text: 'no exported functions' })));
  }

  const select = $('#function-select');
  const previous = select.value;
  select.replaceChildren(
    ...functions.map((f) => el('option', { value: f.name, text: f.name, title: f.signature ?? '' })),
  );
  if (functions.some((f) => f.name === previous)) select.value = previous;
  $('#call-wave-label').hidden = kind !== 'component';
  $('#call-abi').value = '';

  for (const id of ['#call-output', '#browser-output', '#server-output']) setText(id, '', 'output');
  for (const id of ['#call-time', '#call-fuel', '#call-memory']) setText(id, '–');
  setText('#call-status', '', 'note');
  setText('#browser-time', '–');
  setText('#server-time', '–');
  resetAgree();

  const runnable = kind === 'core' || kind === 'component';
  $('#browser-run-button').disabled = !runnable;
  setText(
    '#browser-note',
    kind === 'core'
      ? 'Runs the module’s bytes in this page’s WebAssembly engine (imports are stubs that throw) and makes the same numeric call on the server. The input is a JSON array of numbers.'
      : kind === 'component'
        ? 'Transpiles the component to JavaScript with jco in this page, instantiates it with the WASI browser shims (no files, network or environment; other imports stop the call with a trap, like serve --trap-unknown-imports) and calls the export with the same JSON arguments as the component call on the server.'
        : `A ${kind} can’t run in the browser.`,
    runnable ? 'note' : 'note error',
  );
  if (kind === 'component') checkJcoBundle();
  chooseFunction(select.value);
}

function functionInfo(name) {
  return (state.detail?.functions ?? []).find((f) => f.name === name) ?? null;
}

function chooseFunction(name) {
  if (!name) return;
  const select = $('#function-select');
  select.value = name;
  for (const tr of document.querySelectorAll('#functions tbody tr')) {
    tr.classList.toggle('selected', tr.dataset.function === name);
  }
  const sig = parseSignature(functionInfo(name)?.signature);
  const input = $('#call-input');
  const info = functionInfo(name);
  if (sig) {
    const example = sig.params.map((t, i) => (t.startsWith('f') ? `${i + 1}.5` : String(i + 2)));
    input.placeholder = `numeric: a JSON array of ${sig.params.length} number(s), e.g. [${example.join(', ')}]`;
  } else if (info?.params) {
    const params = info.params.map((p) => `${p.name}: ${witTypeName(p.type)}`).join(', ');
    input.placeholder = `JSON arguments (${params}): an array in order, an object by name, or the one argument itself`;
  } else {
    input.placeholder = 'input: JSON (e.g. [2, 3] or {"key": "value"}) or text';
  }
}

// ---------------------------------------------------------------------------
// Calls on the server

const callPath = (ref, fn, params) => {
  const qs = params && [...params].length ? `?${params}` : '';
  return `/api/v1/modules/${refPath(ref)}/call/${encodeURIComponent(fn)}${qs}`;
};

function isJson(text) {
  try {
    JSON.parse(text);
    return true;
  } catch {
    return false;
  }
}

/** Reads a call's result body according to its content type. */
async function readResult(res) {
  const type = res.headers.get('Content-Type') ?? '';
  const bytes = new Uint8Array(await res.arrayBuffer());
  if (type.startsWith('application/json')) {
    const text = new TextDecoder().decode(bytes);
    try {
      return { type, text, shown: JSON.stringify(JSON.parse(text), null, 2) };
    } catch {
      return { type, text, shown: text };
    }
  }
  if (type.startsWith('text/') || type === '') {
    const text = new TextDecoder().decode(bytes);
    return { type, text, shown: text };
  }
  try {
    const text = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
    return { type, text, shown: `${text}\n\n(${bytes.length} bytes, ${type})` };
  } catch {
    const hex = [...bytes.slice(0, 1024)].map((b) => b.toString(16).padStart(2, '0'));
    const lines = [];
    for (let i = 0; i < hex.length; i += 16) lines.push(hex.slice(i, i + 16).join(' '));
    const more = bytes.length > 1024 ? `\n… ${bytes.length - 1024} more bytes` : '';
    return { type, text: null, shown: `${lines.join('\n')}${more}\n\n(${bytes.length} bytes, ${type})` };
  }
}

function costOf(headers) {
  return {
    durationUs: headers.get('X-Wasmhost-Duration-Us'),
    fuel: headers.get('X-Wasmhost-Fuel'),
    memory: headers.get('X-Wasmhost-Memory-Bytes'),
  };
}

function showCost(cost) {
  setText('#call-time', cost.durationUs != null ? fmtMicros(cost.durationUs) : '–');
  setText('#call-fuel', cost.fuel != null ? fmtCount(cost.fuel) : 'not metered');
  setText('#call-memory', cost.memory != null ? fmtBytes(cost.memory) : '–');
}

async function callOnServer(event) {
  event.preventDefault();
  const ref = state.selected;
  const fn = $('#function-select').value;
  if (!ref || !fn) return;
  const input = $('#call-input').value;
  const params = new URLSearchParams();
  if ($('#call-abi').value) params.set('abi', $('#call-abi').value);
  if (!$('#call-wave-label').hidden && $('#call-wave').checked) params.set('wave', 'true');
  const output = $('#call-output');
  const button = $('#call-button');
  button.disabled = true;
  setText('#call-status', `calling ${fn}…`, 'note');
  output.dataset.result = '';
  const started = performance.now();
  try {
    const res = await api('POST', callPath(ref, fn, params), {
      body: input,
      headers: { 'Content-Type': isJson(input) ? 'application/json' : 'text/plain; charset=utf-8' },
    });
    const roundTrip = performance.now() - started;
    const result = await readResult(res);
    output.textContent = result.shown;
    output.className = 'output';
    output.dataset.result = 'ok';
    output.dataset.contentType = result.type;
    showCost(costOf(res.headers));
    setText('#call-status', `${res.status} · ${result.type || 'no content type'} · round trip ${fmtMillis(roundTrip)}`, 'note ok');
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError(0, 'internal', String(e));
    output.textContent = err.describe();
    output.className = 'output error';
    output.dataset.result = 'error';
    output.dataset.code = err.code;
    showCost(costOf(err.headers));
    setText('#call-status', `failed: ${err.code}`, 'note error');
  } finally {
    button.disabled = false;
  }
}

// ---------------------------------------------------------------------------
// Run in this browser

/** `func (i32, i64) -> (f32)` -> {params: ['i32','i64'], results: ['f32']}. */
function parseSignature(sig) {
  if (!sig) return null;
  const m = /^\s*(?:func\s*)?\(([^)]*)\)\s*(?:->\s*\(?([^)]*)\)?)?\s*$/.exec(sig);
  if (!m) return null;
  const list = (s) =>
    (s ?? '')
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean)
      .map((x) => x.split(/[:\s]+/).pop());
  const params = list(m[1]);
  const results = list(m[2]);
  const numeric = (t) => ['i32', 'i64', 'f32', 'f64'].includes(t);
  return params.every(numeric) && results.every(numeric) ? { params, results } : null;
}

/**
 * The numeric arguments of a JSON array (or a single number). Integers for
 * i64 parameters are taken from the text, so that they keep every digit.
 */
function numericArgs(text, sig) {
  const trimmed = text.trim() || '[]';
  let parsed;
  try {
    parsed = JSON.parse(trimmed);
  } catch (e) {
    throw new ApiError(0, 'bad_input', `the input is not JSON: ${e.message}`);
  }
  const values = Array.isArray(parsed) ? parsed : [parsed];
  if (!values.every((v) => typeof v === 'number')) {
    throw new ApiError(0, 'bad_input', 'the input must be a JSON array of numbers, e.g. [2, 3]');
  }
  const tokens = Array.isArray(parsed) ? trimmed.replace(/^\[|\]$/g, '').split(',').map((t) => t.trim()) : [trimmed];
  if (sig && values.length !== sig.params.length) {
    throw new ApiError(0, 'bad_input', `the function takes ${sig.params.length} argument(s), the input has ${values.length}`);
  }
  return values.map((v, i) => {
    const type = sig?.params[i];
    if (type === 'i64') {
      if (!/^-?\d+$/.test(tokens[i] ?? '')) throw new ApiError(0, 'bad_input', `argument ${i + 1} is an i64: it must be an integer`);
      return BigInt(tokens[i]);
    }
    if (type === 'i32' && !Number.isInteger(v)) {
      throw new ApiError(0, 'bad_input', `argument ${i + 1} is an i32: it must be an integer`);
    }
    return v;
  });
}

/** The selected module's bytes, fetched once per digest. */
function browserBytes(detail) {
  const key = detail.digest ?? state.selected;
  if (!state.wasm.has(key)) {
    const promise = (async () => {
      const res = await api('GET', `/api/v1/modules/${refPath(state.selected)}/wasm`);
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!(bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d)) {
        const type = res.headers.get('Content-Type');
        throw new ApiError(0, 'invalid_module', `GET …/wasm did not return wasm bytes (${type}, ${bytes.length} bytes)`);
      }
      return { key, bytes };
    })();
    promise.catch(() => state.wasm.delete(key));
    state.wasm.set(key, promise);
  }
  return state.wasm.get(key);
}

/**
 * The guest runs in a worker (this same file), so that a guest that loops
 * forever cannot freeze the page: after BROWSER_TIMEOUT_MS the worker is
 * terminated and the run fails with `timeout`, like the server's deadline.
 */
const BROWSER_TIMEOUT_MS = 10_000;
/** A component's first run also loads jco and transpiles: it gets longer. */
const COMPONENT_TIMEOUT_MS = 30_000;
let worker = null;
let workerSeq = 0;

/** Runs `message` ({kind: 'core', fn, args} or {kind: 'component', fn, input, params, results}) in the worker. */
async function runInBrowser(message, timeoutMs = BROWSER_TIMEOUT_MS) {
  const { key, bytes } = await browserBytes(state.detail);
  worker ??= new Worker(import.meta.url, { type: 'module', name: 'wasmhost-browser-run' });
  const w = worker;
  const id = ++workerSeq;
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      w.terminate();
      if (worker === w) worker = null;
      reject(new ApiError(0, 'timeout', `still running after ${timeoutMs / 1000} s in the browser: stopped`));
    }, timeoutMs);
    const done = () => {
      clearTimeout(timer);
      w.removeEventListener('message', onMessage);
      w.removeEventListener('error', onError);
    };
    const onMessage = ({ data }) => {
      if (data.id !== id) return;
      done();
      if (data.ok) resolve(data);
      else reject(new ApiError(0, data.code, data.message));
    };
    const onError = (e) => {
      done();
      w.terminate();
      if (worker === w) worker = null;
      reject(new ApiError(0, 'internal', `the browser's worker failed: ${e.message ?? 'unknown error'}`));
    };
    w.addEventListener('message', onMessage);
    w.addEventListener('error', onError);
    w.postMessage({ id, key, bytes, ...message });
  });
}

// --- inside the worker ---

/** Imports: a stub that throws for every function; other kinds can't be faked. */
function stubImports(module) {
  const imports = {};
  for (const imp of WebAssembly.Module.imports(module)) {
    if (imp.kind !== 'function') {
      throw new ApiError(0, 'link_error', `the module imports a ${imp.kind} (${imp.module}.${imp.name}); the browser run provides no imports`);
    }
    imports[imp.module] ??= {};
    imports[imp.module][imp.name] = () => {
      throw new Error(`import ${imp.module}.${imp.name} is not available in the browser`);
    };
  }
  return imports;
}

/** An exception from the guest or the engine, with a code like the server's. */
function browserError(e) {
  if (e instanceof ApiError) return e;
  const code =
    e instanceof WebAssembly.RuntimeError ? 'trap'
      : e instanceof WebAssembly.LinkError ? 'link_error'
        : e instanceof WebAssembly.CompileError ? 'invalid_module'
          : e instanceof RangeError && /stack/i.test(e.message) ? 'stack_overflow'
            : e instanceof TypeError ? 'bad_input'
              : 'guest_error';
  return new ApiError(0, code, `${e.name}: ${e.message}`);
}

/** Instantiates synchronously when the engine allows it (cheaper to time), else awaits. */
async function instantiate(module, imports) {
  try {
    return new WebAssembly.Instance(module, imports);
  } catch (e) {
    if (e instanceof RangeError) return WebAssembly.instantiate(module, imports);
    throw e;
  }
}

const compiled = new Map(); // digest -> {module, compileMs}

/**
 * Runs `fn(...args)` in a fresh instance (like the server: a fresh sandbox
 * per call), then times it: the clock is coarse (100 µs without cross-origin
 * isolation), so the times are means over repeated runs of about 30 ms.
 */
async function workerRun({ key, bytes, fn, args }) {
  if (!compiled.has(key)) {
    const started = performance.now();
    const module = await WebAssembly.compile(bytes);
    compiled.set(key, { module, compileMs: performance.now() - started });
  }
  const { module, compileMs } = compiled.get(key);
  const imports = stubImports(module);
  const first = await instantiate(module, imports);
  const exported = first.exports[fn];
  if (typeof exported !== 'function') throw new ApiError(0, 'not_found', `no exported function ${fn}`);
  const raw = exported(...args);
  const values = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];

  const BUDGET_MS = 30;
  const MAX_RUNS = 5000;
  let runs = 0;
  let started = performance.now();
  while (runs < MAX_RUNS && performance.now() - started < BUDGET_MS) {
    (await instantiate(module, imports)).exports[fn](...args);
    runs += 1;
  }
  const totalMs = (performance.now() - started) / runs;
  let calls = 0;
  started = performance.now();
  while (calls < MAX_RUNS && performance.now() - started < BUDGET_MS / 3) {
    exported(...args);
    calls += 1;
  }
  const callMs = (performance.now() - started) / calls;
  return { values, totalMs, callMs, compileMs, runs };
}

function workerMain() {
  self.addEventListener('message', async ({ data }) => {
    try {
      const run = data.kind === 'component' ? workerRunComponent : workerRun;
      self.postMessage({ id: data.id, ok: true, ...(await run(data)) });
    } catch (e) {
      const err = browserError(e);
      self.postMessage({ id: data.id, ok: false, code: err.code, message: err.message });
    }
  });
}

// ---------------------------------------------------------------------------
// Components in the browser: jco transpiles, JSON <-> jco's JavaScript values
//
// The server calls a component's export with JSON arguments converted through
// its WIT types (crates/wasmhost/src/convention/component.rs); the browser run
// takes the same JSON, converts it to the values jco's generated bindings take,
// calls the export, and converts the result back to the server's JSON form, so
// that the two can be compared. The types come from the inspection
// (`functions[].params`, `functions[].results`). The mapping, WIT: JSON ->
// jco's JavaScript (and back):
//
//   bool, s8..u32, f32, f64   boolean / number                 -> the same
//   s64, u64                  number (exact: read from the text) -> BigInt
//   char, string              string                           -> string
//   list<T>, tuple<..>        array                            -> array (typed arrays read back too)
//   record                    {"field-name": v}                -> {fieldName: v} (lower camel case)
//   variant                   "case" / {"case": v}             -> {tag: 'case', val: v}
//   enum                      "case"                           -> 'case'
//   flags                     ["read", "write"]                -> {read: true, write: true, exec: false}
//   option<T>                 null / v                         -> undefined / v ({tag: 'some', val} when nested)
//   result<T, E>              {"ok": v} / {"err": e}           -> {tag: 'ok'|'err', val}; as the function's
//                                                                 result: returned / thrown (ComponentError)
//
// Limits: resources, futures and streams have no JSON form (as on the
// server); an option directly inside an option is `null` for both `none`s
// (as on the server); exports are looked up by jco's lower-camel-case names.

/** jco's names: lower camel case of a kebab-case WIT name (`add-points` -> `addPoints`). */
function jsName(name) {
  return String(name)
    .split('-')
    .map((w, i) => (i === 0 ? w.toLowerCase() : w.charAt(0).toUpperCase() + w.slice(1).toLowerCase()))
    .join('');
}

/** A WIT type (as the inspection describes it) as text, for messages. */
function witTypeName(t) {
  if (typeof t === 'string') return t;
  if (t == null) return '_';
  const [kind, inner] = Object.entries(t)[0] ?? ['?', null];
  if (kind === 'list' || kind === 'option') return `${kind}<${witTypeName(inner)}>`;
  if (kind === 'tuple') return `tuple<${inner.map(witTypeName).join(', ')}>`;
  if (kind === 'result') return `result<${witTypeName(inner.ok)}, ${witTypeName(inner.err)}>`;
  if (kind === 'unsupported') return inner;
  return kind;
}

const INT_RANGES = {
  s8: [-128n, 127n],
  u8: [0n, 255n],
  s16: [-32768n, 32767n],
  u16: [0n, 65535n],
  s32: [-2147483648n, 2147483647n],
  u32: [0n, 4294967295n],
  s64: [-(2n ** 63n), 2n ** 63n - 1n],
  u64: [0n, 2n ** 64n - 1n],
};

const badInput = (message) => new ApiError(0, 'bad_input', message);

function jsonKind(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'bigint' || typeof v === 'number') return String(v);
  if (typeof v === 'string') return v.length < 40 ? `"${v}"` : 'a string';
  if (typeof v === 'boolean') return String(v);
  return 'an object';
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The one `[key, value]` of a one-key object, or null. */
function single(v) {
  if (!isObject(v)) return null;
  const entries = Object.entries(v);
  return entries.length === 1 ? entries[0] : null;
}

/** JSON (the server's form; integers may be BigInt) -> the value jco's bindings take. */
function toJs(t, v, at, nested = false) {
  const mismatch = (want) => badInput(`${at}: expected ${want}, got ${jsonKind(v)}`);
  if (typeof t === 'string') {
    if (t === 'bool') {
      if (typeof v !== 'boolean') throw mismatch('a boolean');
      return v;
    }
    if (t in INT_RANGES) {
      if (!(typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) throw mismatch(t);
      const n = BigInt(v);
      const [lo, hi] = INT_RANGES[t];
      if (n < lo || n > hi) throw badInput(`${at}: expected ${t}: ${n} is out of range ${lo}..=${hi}`);
      return t === 's64' || t === 'u64' ? n : Number(n);
    }
    if (t === 'f32' || t === 'f64') {
      if (typeof v !== 'number' && typeof v !== 'bigint') throw mismatch(`a number (${t})`);
      return Number(v);
    }
    if (t === 'char') {
      if (typeof v !== 'string' || [...v].length !== 1) throw mismatch('a one-character string');
      return v;
    }
    if (t === 'string') {
      if (typeof v !== 'string') throw mismatch('a string');
      return v;
    }
    throw badInput(`${at}: values of type ${t} cannot be given as JSON`);
  }
  const [kind, inner] = Object.entries(t ?? {})[0] ?? [];
  switch (kind) {
    case 'list':
      if (!Array.isArray(v)) throw mismatch('an array');
      return v.map((x, i) => toJs(inner, x, `${at}[${i}]`));
    case 'tuple':
      if (!Array.isArray(v)) throw mismatch('an array (a tuple)');
      if (v.length !== inner.length) throw badInput(`${at}: expected a tuple of ${inner.length} values, got ${v.length}`);
      return v.map((x, i) => toJs(inner[i], x, `${at}.${i}`));
    case 'record': {
      if (!isObject(v)) throw mismatch('an object (a record)');
      const out = {};
      for (const f of inner) {
        let fv = v[f.name];
        if (!Object.hasOwn(v, f.name)) {
          // An absent optional field is `none`.
          if (!(isObject(f.type) && 'option' in f.type)) {
            throw badInput(`${at}: missing field \`${f.name}\` (${witTypeName(f.type)})`);
          }
          fv = null;
        }
        out[jsName(f.name)] = toJs(f.type, fv, `${at}.${f.name}`);
      }
      const extra = Object.keys(v).find((k) => !inner.some((f) => f.name === k));
      if (extra !== undefined) {
        throw badInput(`${at}: unknown field \`${extra}\` (the record has ${inner.map((f) => f.name).join(', ')})`);
      }
      return out;
    }
    case 'variant': {
      const one = single(v);
      const [name, payload] = typeof v === 'string' ? [v, undefined] : one ?? [];
      if (name === undefined) {
        throw mismatch(`a variant: "case" or {"case": payload} with case one of ${inner.map((c) => c.name).join(', ')}`);
      }
      const c = inner.find((x) => x.name === name);
      if (!c) throw badInput(`${at}: unknown case \`${name}\` (cases: ${inner.map((x) => x.name).join(', ')})`);
      if (c.type == null) {
        if (payload !== undefined && payload !== null) throw badInput(`${at}: case \`${name}\` carries no payload: write "${name}"`);
        return { tag: name };
      }
      if (payload === undefined) throw badInput(`${at}: case \`${name}\` carries a ${witTypeName(c.type)}: write {"${name}": value}`);
      return { tag: name, val: toJs(c.type, payload, `${at}.${name}`) };
    }
    case 'enum':
      if (typeof v !== 'string') throw mismatch('a string (an enum case)');
      if (!inner.includes(v)) throw badInput(`${at}: unknown enum case \`${v}\` (cases: ${inner.join(', ')})`);
      return v;
    case 'flags': {
      if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw mismatch('an array of flag names');
      const unknown = v.find((x) => !inner.includes(x));
      if (unknown !== undefined) throw badInput(`${at}: unknown flag \`${unknown}\` (flags: ${inner.join(', ')})`);
      return Object.fromEntries(inner.map((n) => [jsName(n), v.includes(n)]));
    }
    case 'option': {
      const innerIsOption = isObject(inner) && 'option' in inner;
      if (v === null) return nested ? { tag: 'none' } : undefined;
      const val = toJs(inner, v, at, innerIsOption);
      return nested ? { tag: 'some', val } : val;
    }
    case 'result': {
      const one = single(v);
      if (!one || (one[0] !== 'ok' && one[0] !== 'err')) throw mismatch('{"ok": value} or {"err": value}');
      const [tag, payload] = one;
      const type = inner[tag];
      return { tag, val: type == null ? undefined : toJs(type, payload, `${at}.${tag}`) };
    }
    default:
      throw badInput(`${at}: values of type ${witTypeName(t)} cannot be given as JSON`);
  }
}

/** A value jco's bindings returned -> the server's JSON form (64-bit integers stay BigInt). */
function fromJs(t, v, nested = false) {
  if (typeof t === 'string') {
    if (t === 'f32' || t === 'f64') return Number.isFinite(v) ? v : null; // as serde_json writes them
    if (t in INT_RANGES) return typeof v === 'bigint' ? v : Number(v);
    return v;
  }
  const [kind, inner] = Object.entries(t ?? {})[0] ?? [];
  switch (kind) {
    case 'list':
      return Array.from(v ?? [], (x) => fromJs(inner, x));
    case 'tuple':
      return inner.map((ty, i) => fromJs(ty, v[i]));
    case 'record':
      return Object.fromEntries(inner.map((f) => [f.name, fromJs(f.type, v?.[jsName(f.name)])]));
    case 'variant': {
      const c = inner.find((x) => x.name === v?.tag);
      if (!c) throw new ApiError(0, 'guest_error', `jco returned a variant with an unknown case ${String(v?.tag)}`);
      return c.type == null ? c.name : { [c.name]: fromJs(c.type, v.val) };
    }
    case 'enum':
      return v;
    case 'flags':
      return inner.filter((n) => v?.[jsName(n)]);
    case 'option': {
      const innerIsOption = isObject(inner) && 'option' in inner;
      if (nested) return v?.tag === 'some' ? fromJs(inner, v.val, innerIsOption) : null;
      return v === undefined || v === null ? null : fromJs(inner, v, innerIsOption);
    }
    case 'result':
      return { [v?.tag]: inner[v?.tag] == null ? null : fromJs(inner[v.tag], v.val) };
    default:
      throw new ApiError(0, 'bad_input', `a ${witTypeName(t)} has no JSON form`);
  }
}

/**
 * The arguments of a component call from JSON text, in the forms the server
 * takes: an array in parameter order, an object by parameter name, or (one
 * parameter) the argument itself, bare or wrapped.
 */
function componentArgs(text, params) {
  const trimmed = text.trim();
  let input;
  try {
    input = trimmed === '' ? [] : parseJsonExact(trimmed);
  } catch (e) {
    throw badInput(`the arguments are not valid JSON: ${e.message}`);
  }
  const names = params.map((p) => p.name).join(', ');
  const positional = (items) => params.map((p, i) => toJs(p.type, items[i], `argument ${p.name}`));
  if (Array.isArray(input) && input.length === params.length && params.length !== 1) return positional(input);
  if (isObject(input) && params.length !== 1 && Object.keys(input).length === params.length && params.every((p) => Object.hasOwn(input, p.name))) {
    return params.map((p) => toJs(p.type, input[p.name], `argument ${p.name}`));
  }
  if (params.length === 1) {
    const [p] = params;
    try {
      return [toJs(p.type, input, `argument ${p.name}`)];
    } catch (first) {
      if (Array.isArray(input) && input.length === 1) {
        try {
          return positional(input);
        } catch {
          throw first;
        }
      }
      const one = single(input);
      if (one && one[0] === p.name) {
        try {
          return [toJs(p.type, one[1], `argument ${p.name}`)];
        } catch {
          throw first;
        }
      }
      throw first;
    }
  }
  if (Array.isArray(input)) throw badInput(`the function takes ${params.length} argument(s) (${names}), ${input.length} given`);
  if (isObject(input)) {
    const missing = params.map((p) => p.name).filter((n) => !Object.hasOwn(input, n));
    const unknown = Object.keys(input).filter((k) => !params.some((p) => p.name === k));
    throw badInput(`the arguments by name must be exactly (${names}); missing: [${missing.join(', ')}], unknown: [${unknown.join(', ')}]`);
  }
  throw badInput(`the function takes ${params.length} arguments (${names}): give a JSON array or object, not ${jsonKind(input)}`);
}

/** JSON.parse, with integers beyond 2^53 kept exact as BigInt (from their source text). */
function parseJsonExact(text) {
  return JSON.parse(text, (key, value, context) => {
    if (typeof value === 'number' && context?.source && /^-?\d+$/.test(context.source) && !Number.isSafeInteger(value)) {
      return BigInt(context.source);
    }
    return value;
  });
}

/** JSON text indented, integers kept exact; the text itself when it is not JSON. */
function prettyJson(text) {
  try {
    return jsonText(parseJsonExact(text));
  } catch {
    return text;
  }
}

/** JSON text of a value whose integers may be BigInt (written with all their digits). */
function jsonText(value, indent = 2) {
  const big = [];
  const text = JSON.stringify(
    value,
    (key, v) => {
      if (typeof v !== 'bigint') return v;
      big.push(v.toString());
      return `\u0000big${big.length - 1}\u0000`;
    },
    indent,
  );
  return text === undefined ? 'null' : text.replace(/"\\u0000big(\d+)\\u0000"/g, (_, i) => big[Number(i)]);
}

/**
 * The canonical form of a JSON value of WIT type `t`, for comparing the
 * browser's result with the server's: integers as decimal text, f32 rounded
 * to f32. Throws when the value does not have the type's shape.
 */
function canonical(t, v) {
  const wrong = () => {
    throw new Error(`not a ${witTypeName(t)}: ${jsonText(v, 0)}`);
  };
  if (typeof t === 'string') {
    if (t in INT_RANGES) {
      if (!(typeof v === 'bigint' || (typeof v === 'number' && Number.isInteger(v)))) wrong();
      return BigInt(v).toString();
    }
    if (t === 'f32') return v === null ? null : typeof v === 'number' ? Math.fround(v) : wrong();
    if (t === 'f64') return v === null || typeof v === 'number' ? v : wrong();
    if (t === 'bool') return typeof v === 'boolean' ? v : wrong();
    return typeof v === 'string' ? v : wrong();
  }
  const [kind, inner] = Object.entries(t ?? {})[0] ?? [];
  switch (kind) {
    case 'list':
      return Array.isArray(v) ? v.map((x) => canonical(inner, x)) : wrong();
    case 'tuple':
      return Array.isArray(v) && v.length === inner.length ? v.map((x, i) => canonical(inner[i], x)) : wrong();
    case 'record':
      if (!isObject(v)) wrong();
      return inner.map((f) => canonical(f.type, v[f.name] ?? null));
    case 'variant': {
      const [name, payload] = typeof v === 'string' ? [v, null] : single(v) ?? wrong();
      const c = inner.find((x) => x.name === name) ?? wrong();
      return [name, c.type == null ? null : canonical(c.type, payload)];
    }
    case 'enum':
      return inner.includes(v) ? v : wrong();
    case 'flags':
      return Array.isArray(v) ? inner.filter((n) => v.includes(n)) : wrong();
    case 'option':
      return v === null ? null : ['some', canonical(inner, v)];
    case 'result': {
      const [tag, payload] = single(v) ?? wrong();
      if (tag !== 'ok' && tag !== 'err') wrong();
      return [tag, inner[tag] == null ? null : canonical(inner[tag], payload)];
    }
    default:
      return wrong();
  }
}

/** Whether the server's JSON result and the browser's say the same value of the function's result type. */
function componentResultsAgree(serverText, browserValue, results) {
  try {
    const server = serverText.trim() === '' ? null : parseJsonExact(serverText);
    if (results.length === 0) return server === null && browserValue === null;
    const type = results.length === 1 ? results[0] : { tuple: results };
    return JSON.stringify(canonical(type, server)) === JSON.stringify(canonical(type, browserValue));
  } catch {
    return false;
  }
}

// --- inside the worker ---

const JCO_BUNDLE_URL = '/assets/jco-bundle.js';
let jcoBundle = null; // Promise of the bundle's module

/** jco's transpiler and the WASI shims, loaded once, on first use. */
function loadJco() {
  jcoBundle ??= import(JCO_BUNDLE_URL).catch(async (e) => {
    jcoBundle = null;
    // Ask the server why: a binary built without the bundle says so.
    const res = await fetch(JCO_BUNDLE_URL, { cache: 'no-store' }).catch(() => null);
    if (res && !res.ok) throw await errorOf(res);
    throw new ApiError(0, 'internal', `cannot load jco (${JCO_BUNDLE_URL}): ${e.message}`);
  });
  return jcoBundle;
}

const transpiled = new Map(); // digest -> {instantiate, modules, imports, transpileMs, compileMs}

/**
 * The component transpiled by jco (its JavaScript imported from a Blob URL,
 * its core modules compiled), once per digest.
 */
async function transpileComponent(key, bytes) {
  if (transpiled.has(key)) return transpiled.get(key);
  const jco = await loadJco();
  let started = performance.now();
  let out;
  try {
    out = await jco.transpile(bytes, {
      name: 'component',
      instantiation: { tag: 'async' },
      noTypescript: true,
      noNodejsCompat: true,
    });
  } catch (e) {
    throw new ApiError(0, 'invalid_module', `jco cannot transpile this component: ${e?.message ?? e}`);
  }
  const transpileMs = performance.now() - started;
  started = performance.now();
  const modules = new Map();
  let js = null;
  for (const [name, data] of out.files) {
    if (name.endsWith('.wasm')) modules.set(name, await WebAssembly.compile(data));
    else if (name.endsWith('.js')) js = data;
  }
  const compileMs = performance.now() - started;
  if (!js) throw new ApiError(0, 'internal', 'jco produced no JavaScript');
  const url = URL.createObjectURL(new Blob([js], { type: 'text/javascript' }));
  let instantiateComponent;
  try {
    ({ instantiate: instantiateComponent } = await import(url));
  } finally {
    URL.revokeObjectURL(url);
  }
  const entry = { instantiateComponent, modules, imports: out.imports, jco, transpileMs, compileMs };
  transpiled.set(key, entry);
  return entry;
}

/**
 * What a transpiled component is instantiated with: the WASI shims, as the
 * server's API grants WASI (no files, network, environment or arguments),
 * and, for any other interface, functions that stop the call with `trap`
 * (as `serve --trap-unknown-imports` links them).
 */
function componentImports({ jco, imports }) {
  const wasi = new jco.WASIShim({ sandbox: { preopens: {}, env: {}, args: [], enableNetwork: false } }).getImportObject();
  const all = { ...wasi };
  for (const spec of imports) {
    if (spec in all) continue;
    all[spec] = new Proxy(
      {},
      {
        get: (_, name) =>
          typeof name !== 'string'
            ? undefined
            : function unavailable() {
                throw new ApiError(0, 'trap', `import ${spec}#${name} is not available in the browser`);
              },
      },
    );
  }
  return all;
}

/** The export `fn` (`add-points`, or `ns:pkg/iface#f`) of a jco instance. */
function componentExport(instance, fn) {
  const hash = fn.lastIndexOf('#');
  let scope = instance;
  if (hash >= 0) {
    const iface = fn.slice(0, hash);
    const short = iface.replace(/@.*$/, '').split('/').pop();
    scope = instance[iface] ?? Object.entries(instance).find(([k]) => k.replace(/@.*$/, '') === iface.replace(/@.*$/, ''))?.[1] ?? instance[jsName(short)];
  }
  const name = jsName(fn.slice(hash + 1));
  const f = scope?.[name] ?? scope?.[`${name}$`];
  if (typeof f !== 'function') throw new ApiError(0, 'not_found', `jco's bindings have no export ${fn} (looked for ${name})`);
  return f;
}

/** One call: the result as the server's JSON form (a `result` return caught from its throw). */
function callComponent(f, args, results) {
  const type = results[0];
  const isResult = isObject(type) && 'result' in type;
  try {
    const raw = f(...args);
    if (results.length === 0) return null;
    return fromJs(type, isResult ? { tag: 'ok', val: raw } : raw);
  } catch (e) {
    if (isResult && e && Object.hasOwn(e, 'payload')) return fromJs(type, { tag: 'err', val: e.payload });
    throw e;
  }
}

/**
 * Transpiles (once), then runs `fn` in a fresh instance with the JSON
 * arguments converted through its types, like the server's component call;
 * then times instantiate + call and call alone, as for core modules.
 */
async function workerRunComponent({ key, bytes, fn, input, params, results }) {
  const args = componentArgs(input, params);
  const entry = await transpileComponent(key, bytes);
  const imports = componentImports(entry);
  const getCoreModule = (name) => entry.modules.get(name);
  const fresh = () => entry.instantiateComponent(getCoreModule, imports);
  const first = await fresh();
  const f = componentExport(first, fn);
  const value = callComponent(f, args, results);

  const BUDGET_MS = 30;
  const MAX_RUNS = 2000;
  let runs = 0;
  let started = performance.now();
  while (runs < MAX_RUNS && performance.now() - started < BUDGET_MS) {
    callComponent(componentExport(await fresh(), fn), args, results);
    runs += 1;
  }
  const totalMs = (performance.now() - started) / runs;
  let calls = 0;
  started = performance.now();
  while (calls < MAX_RUNS && performance.now() - started < BUDGET_MS / 3) {
    callComponent(f, args, results);
    calls += 1;
  }
  const callMs = (performance.now() - started) / calls;
  return { value, totalMs, callMs, transpileMs: entry.transpileMs, compileMs: entry.compileMs, runs };
}

/** A number as a server prints it (`inf`, `NaN`, `-0`…) or as JSON. */
function parseNumber(token) {
  if (typeof token === 'number') return token;
  const t = String(token).trim().toLowerCase();
  if (t === 'nan' || t === '+nan' || t === '-nan') return NaN;
  if (t === 'inf' || t === '+inf' || t === 'infinity' || t === '+infinity') return Infinity;
  if (t === '-inf' || t === '-infinity') return -Infinity;
  return t === '' ? NaN : Number(t);
}

/** Whether the server's result body says the same numbers as the browser's. */
function agrees(serverResult, browserValues, sig) {
  let serverValues;
  if (serverResult.type.startsWith('application/json')) {
    try {
      const parsed = JSON.parse(serverResult.text);
      serverValues = Array.isArray(parsed) ? parsed : parsed == null ? [] : [parsed];
    } catch {
      return false;
    }
    // Integers keep all their digits in the text.
    const tokens = serverResult.text.trim().replace(/^\[|\]$/g, '').split(',').map((t) => t.trim()).filter(Boolean);
    if (tokens.length === serverValues.length) serverValues = tokens;
  } else {
    serverValues = (serverResult.text ?? '').split(/\s+/).filter(Boolean);
  }
  if (serverValues.length !== browserValues.length) return false;
  return browserValues.every((b, i) => {
    const s = serverValues[i];
    const type = sig?.results[i] ?? (typeof b === 'bigint' ? 'i64' : 'f64');
    if (type === 'i64' || typeof b === 'bigint') {
      try {
        return BigInt(String(s).trim()) === BigInt(b);
      } catch {
        return false;
      }
    }
    const n = parseNumber(s);
    if (Number.isNaN(n) && Number.isNaN(b)) return true;
    if (type === 'f32') return Math.fround(n) === Math.fround(b);
    return n === b;
  });
}

function resetAgree() {
  const agree = $('#agree');
  agree.textContent = '';
  agree.dataset.agree = '';
}

async function browserRun() {
  const detail = state.detail;
  const fn = $('#function-select').value;
  if (!detail || !fn) return;
  const browserOut = $('#browser-output');
  const serverOut = $('#server-output');
  const agree = $('#agree');
  resetAgree();
  if (detail.kind === 'component') {
    await browserRunComponent(fn);
    return;
  }
  if (detail.kind !== 'core') {
    browserOut.textContent = `A ${detail.kind} can’t run in the browser.`;
    browserOut.className = 'output error';
    return;
  }
  const button = $('#browser-run-button');
  button.disabled = true;
  setText('#browser-output', 'running…', 'output');
  setText('#server-output', 'calling…', 'output');
  setText('#browser-time', '–');
  setText('#server-time', '–');
  const sig = parseSignature(functionInfo(fn)?.signature);
  const input = $('#call-input').value.trim() || '[]';

  let browser;
  let server;
  try {
    const args = numericArgs(input, sig);
    try {
      browser = { ok: true, ...(await runInBrowser({ kind: 'core', fn, args })) };
    } catch (e) {
      browser = { ok: false, error: browserError(e) };
    }
  } catch (e) {
    // The input itself is wrong: neither side is asked.
    setText('#browser-output', e.describe(), 'output error');
    setText('#server-output', '', 'output');
    button.disabled = false;
    return;
  }

  const started = performance.now();
  try {
    const res = await api('POST', callPath(state.selected, fn, new URLSearchParams({ abi: 'numeric' })), {
      body: input,
      headers: { 'Content-Type': 'application/json' },
    });
    server = { ok: true, roundTripMs: performance.now() - started, cost: costOf(res.headers), result: await readResult(res) };
  } catch (e) {
    const err = e instanceof ApiError ? e : new ApiError(0, 'internal', String(e));
    server = { ok: false, roundTripMs: performance.now() - started, cost: costOf(err.headers), error: err };
  }

  if (browser.ok) {
    setText('#browser-output', browser.values.map((v) => String(v)).join('\n') || '(no results)', 'output');
    setText(
      '#browser-time',
      `instantiate + call ${fmtMillis(browser.totalMs)} (call ${fmtMillis(browser.callMs)}), mean of ${browser.runs} · compile ${fmtMillis(browser.compileMs)}, once`,
    );
  } else {
    setText('#browser-output', browser.error.describe(), 'output error');
    browserOut.dataset.code = browser.error.code;
  }
  if (server.ok) {
    // As given: the body the server sent (JSON or numbers one per line).
    const given = server.result.text ?? server.result.shown;
    setText('#server-output', given.trim() === '' ? '(no results)' : given, 'output');
    setText(
      '#server-time',
      `call ${server.cost.durationUs != null ? fmtMicros(server.cost.durationUs) : '–'} (X-Wasmhost-Duration-Us) · round trip ${fmtMillis(server.roundTripMs)}`,
    );
  } else {
    setText('#server-output', server.error.describe(), 'output error');
    serverOut.dataset.code = server.error.code;
    setText('#server-time', `round trip ${fmtMillis(server.roundTripMs)}`);
  }

  let same;
  let text;
  if (browser.ok && server.ok) {
    same = agrees(server.result, browser.values, sig);
    const shown = browser.values.map(String).join(', ') || 'nothing';
    text = same ? `✓ agree: both returned ${shown}` : '✗ differ: the browser and the server returned different results';
  } else if (!browser.ok && !server.ok) {
    same = true;
    text = `✓ agree: both failed (browser ${browser.error.code}, server ${server.error.code})`;
  } else {
    same = false;
    text = browser.ok ? '✗ differ: only the server failed' : '✗ differ: only the browser failed';
  }
  agree.textContent = text;
  agree.dataset.agree = String(same);
  button.disabled = false;
}

/** A server built without the jco bundle says so on its page (`<body data-jco="missing">`). */
function checkJcoBundle() {
  if (document.body.dataset.jco !== 'missing') return;
  setText(
    '#browser-note',
    'This server was built without the jco bundle, so components can’t run in the browser: run scripts/build-jco.sh, then rebuild wasmhost (scripts/serve.sh and scripts/test.sh do both).',
    'note error',
  );
  $('#browser-note').dataset.jco = 'missing';
  $('#browser-run-button').disabled = true;
}

/**
 * "Run here and on the server" for a component: the same JSON arguments to
 * the same export, transpiled by jco here, through the component convention
 * there. Both results are shown as JSON with their times; they agree when
 * they are the same value of the function's result type.
 */
async function browserRunComponent(fn) {
  const info = functionInfo(fn);
  const browserOut = $('#browser-output');
  const serverOut = $('#server-output');
  const agree = $('#agree');
  const button = $('#browser-run-button');
  const input = $('#call-input').value;
  if (!info?.params || !info?.results) {
    setText('#browser-output', `the server gave no WIT types for ${fn}: it can’t be converted here`, 'output error');
    return;
  }
  if (!$('#call-wave-label').hidden && $('#call-wave').checked) {
    setText('#browser-output', 'the browser run takes JSON arguments: clear “WAVE arguments”', 'output error');
    return;
  }
  delete browserOut.dataset.code;
  delete serverOut.dataset.code;
  button.disabled = true;
  setText('#browser-output', 'transpiling with jco and running…', 'output');
  setText('#server-output', 'calling…', 'output');
  setText('#browser-time', '–');
  setText('#server-time', '–');

  const started = performance.now();
  const serverCall = api('POST', callPath(state.selected, fn, new URLSearchParams({ abi: 'component' })), {
    body: input,
    headers: { 'Content-Type': 'application/json' },
  }).then(
    async (res) => ({ ok: true, roundTripMs: performance.now() - started, cost: costOf(res.headers), result: await readResult(res) }),
    (e) => {
      const err = e instanceof ApiError ? e : new ApiError(0, 'internal', String(e));
      return { ok: false, roundTripMs: performance.now() - started, cost: costOf(err.headers), error: err };
    },
  );
  let browser;
  try {
    const run = await runInBrowser(
      { kind: 'component', fn, input, params: info.params, results: info.results },
      COMPONENT_TIMEOUT_MS,
    );
    browser = { ok: true, ...run };
  } catch (e) {
    browser = { ok: false, error: browserError(e) };
  }
  const server = await serverCall;

  if (browser.ok) {
    setText('#browser-output', info.results.length ? jsonText(browser.value) : '(no results)', 'output');
    setText(
      '#browser-time',
      `instantiate + call ${fmtMillis(browser.totalMs)} (call ${fmtMillis(browser.callMs)}), mean of ${browser.runs} · jco transpile ${fmtMillis(browser.transpileMs)} + compile ${fmtMillis(browser.compileMs)}, once`,
    );
  } else {
    setText('#browser-output', browser.error.describe(), 'output error');
    browserOut.dataset.code = browser.error.code;
  }
  if (server.ok) {
    const given = server.result.text ?? server.result.shown;
    setText('#server-output', given.trim() === '' ? '(no results)' : prettyJson(given), 'output');
    setText(
      '#server-time',
      `call ${server.cost.durationUs != null ? fmtMicros(server.cost.durationUs) : '–'} (X-Wasmhost-Duration-Us) · round trip ${fmtMillis(server.roundTripMs)}`,
    );
  } else {
    setText('#server-output', server.error.describe(), 'output error');
    serverOut.dataset.code = server.error.code;
    setText('#server-time', `round trip ${fmtMillis(server.roundTripMs)}`);
  }

  let same;
  let text;
  if (browser.ok && server.ok) {
    same = componentResultsAgree(server.result.text ?? '', browser.value, info.results);
    text = same
      ? `✓ agree: both returned ${info.results.length ? jsonText(browser.value, 0) : 'nothing'}`
      : '✗ differ: the browser and the server returned different results';
  } else if (!browser.ok && !server.ok) {
    same = browser.error.code === server.error.code;
    text = same
      ? `✓ agree: both failed with ${server.error.code}`
      : `✗ differ: both failed, the browser with ${browser.error.code}, the server with ${server.error.code}`;
  } else {
    same = false;
    text = browser.ok ? '✗ differ: only the server failed' : '✗ differ: only the browser failed';
    if (browser.ok && server.error.code === 'link_error') {
      text += ' (the server has nothing to link to an import that the browser stubs; serve --trap-unknown-imports links it to a trap, as the browser does)';
    }
  }
  agree.textContent = text;
  agree.dataset.agree = String(same);
  button.disabled = false;
}

// ---------------------------------------------------------------------------
// Live metrics: Prometheus text -> rates and percentiles

function parseValue(s) {
  if (s === '+Inf' || s === 'Inf') return Infinity;
  if (s === '-Inf') return -Infinity;
  return Number(s);
}

/** Prometheus text format -> [{name, labels, value}] (comments skipped). */
function parsePrometheus(text) {
  const samples = [];
  const line = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)(?:\s+\S+)?\s*$/;
  const label = /([a-zA-Z_][a-zA-Z0-9_]*)\s*=\s*"((?:[^"\\]|\\.)*)"/g;
  for (const raw of text.split('\n')) {
    const l = raw.trim();
    if (!l || l.startsWith('#')) continue;
    const m = line.exec(l);
    if (!m) continue;
    const labels = {};
    if (m[2]) {
      for (const [, k, v] of m[2].matchAll(label)) {
        labels[k] = v.replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c));
      }
    }
    samples.push({ name: m[1], labels, value: parseValue(m[3]) });
  }
  return samples;
}

/** The totals this page draws, summed over every label set. */
function summarize(samples) {
  let calls = 0;
  let errors = 0;
  const buckets = new Map(); // le -> cumulative count, summed over label sets
  const quantiles = new Map(); // summary fallback: quantile -> max over series
  for (const s of samples) {
    if (s.name === 'wasm_calls_total') calls += s.value;
    else if (s.name === 'wasm_errors_total') errors += s.value;
    else if (s.name === 'wasm_call_duration_seconds_bucket' && s.labels.le != null) {
      const le = parseValue(s.labels.le);
      buckets.set(le, (buckets.get(le) ?? 0) + s.value);
    } else if (s.name === 'wasm_call_duration_seconds' && s.labels.quantile != null && Number.isFinite(s.value)) {
      const q = Number(s.labels.quantile);
      quantiles.set(q, Math.max(quantiles.get(q) ?? 0, s.value));
    }
  }
  return { calls, errors, buckets, quantiles };
}

/**
 * The q-quantile of the observations between two scrapes of a cumulative
 * histogram (as Prometheus' histogram_quantile does: linear within a bucket).
 */
function quantileOfDelta(now, before, q) {
  const les = [...now.keys()].sort((a, b) => a - b);
  if (!les.length) return null;
  const counts = les.map((le) => Math.max(0, now.get(le) - (before?.get(le) ?? 0)));
  const total = counts[counts.length - 1];
  if (!(total > 0)) return null;
  const rank = q * total;
  for (let i = 0; i < les.length; i += 1) {
    if (counts[i] >= rank) {
      if (!Number.isFinite(les[i])) return i > 0 ? les[i - 1] : null;
      const lower = i > 0 ? les[i - 1] : 0;
      const below = i > 0 ? counts[i - 1] : 0;
      const inBucket = counts[i] - below;
      return inBucket > 0 ? lower + ((les[i] - lower) * (rank - below)) / inBucket : les[i];
    }
  }
  return les[les.length - 1];
}

const metrics = { previous: null, points: [], note: '' };

async function scrapeMetrics() {
  let text;
  try {
    const res = await fetch('/metrics', { cache: 'no-store' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    text = await res.text();
    setServerUp(true);
  } catch (e) {
    setText('#metrics-status', `metrics unavailable: ${e.message}`, 'muted error');
    return;
  }
  const now = { t: performance.now(), ...summarize(parsePrometheus(text)) };
  const prev = metrics.previous;
  metrics.previous = now;
  let note = 'polling /metrics every 2 s';
  if (!now.buckets.size && now.quantiles.size) note += ' · latency from summary quantiles (no histogram buckets)';
  setText('#metrics-status', note, 'muted');
  if (!prev) return;
  const dt = (now.t - prev.t) / 1000;
  if (dt <= 0) return;
  // A counter that went down was reset (a restarted server): count from zero.
  const delta = (a, b) => (a >= b ? a - b : a);
  const point = {
    t: now.t,
    calls: delta(now.calls, prev.calls) / dt,
    errors: delta(now.errors, prev.errors) / dt,
    p50: null,
    p99: null,
  };
  if (now.buckets.size) {
    const reset = [...now.buckets].some(([le, c]) => c < (prev.buckets.get(le) ?? 0));
    const before = reset ? null : prev.buckets;
    point.p50 = quantileOfDelta(now.buckets, before, 0.5);
    point.p99 = quantileOfDelta(now.buckets, before, 0.99);
  } else if (now.quantiles.size && point.calls > 0) {
    point.p50 = now.quantiles.get(0.5) ?? null;
    point.p99 = now.quantiles.get(0.99) ?? null;
  }
  metrics.points.push(point);
  if (metrics.points.length > CHART_POINTS) metrics.points.shift();
  setText('#calls-rate', fmtRate(point.calls));
  setText('#errors-rate', fmtRate(point.errors));
  setText('#latency-p50', fmtSeconds(point.p50));
  setText('#latency-p99', fmtSeconds(point.p99));
  drawCharts();
}

// ---------------------------------------------------------------------------
// Charts: hand-drawn on canvas

function cssVar(name) {
  return getComputedStyle(document.documentElement).getPropertyValue(name).trim() || '#888';
}

/** A round upper bound for an axis: 1, 2, 5 × 10^n. */
function niceMax(v) {
  if (!(v > 0)) return 1;
  const exp = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (v <= m * exp) return m * exp;
  }
  return 10 * exp;
}

function drawChart(canvas, series, format) {
  const dpr = window.devicePixelRatio || 1;
  const width = canvas.clientWidth || canvas.width;
  const height = canvas.clientHeight || canvas.height;
  if (canvas.width !== Math.round(width * dpr) || canvas.height !== Math.round(height * dpr)) {
    canvas.width = Math.round(width * dpr);
    canvas.height = Math.round(height * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, width, height);

  const pad = { left: 50, right: 8, top: 8, bottom: 16 };
  const w = width - pad.left - pad.right;
  const h = height - pad.top - pad.bottom;
  const muted = cssVar('--muted');
  const line = cssVar('--line');
  ctx.font = '10px system-ui, sans-serif';

  const points = metrics.points;
  const values = series.flatMap((s) => points.map((p) => p[s.key])).filter((v) => v != null && Number.isFinite(v));
  const max = niceMax(Math.max(0, ...values));

  // Grid and y labels.
  ctx.strokeStyle = line;
  ctx.fillStyle = muted;
  ctx.lineWidth = 1;
  ctx.textAlign = 'right';
  ctx.textBaseline = 'middle';
  for (let i = 0; i <= 4; i += 1) {
    const y = pad.top + h - (h * i) / 4;
    ctx.beginPath();
    ctx.moveTo(pad.left, Math.round(y) + 0.5);
    ctx.lineTo(pad.left + w, Math.round(y) + 0.5);
    ctx.stroke();
    ctx.fillText(format((max * i) / 4), pad.left - 6, y);
  }
  // x labels: the window is CHART_POINTS scrapes, right-aligned at now.
  const windowMs = CHART_POINTS * METRICS_EVERY_MS;
  ctx.textAlign = 'center';
  ctx.textBaseline = 'alphabetic';
  for (const ago of [180, 120, 60, 0]) {
    const x = pad.left + w - (w * ago * 1000) / windowMs;
    if (x >= pad.left) ctx.fillText(ago ? `-${ago}s` : 'now', Math.min(x, pad.left + w - 10), height - 3);
  }

  if (!points.length) {
    ctx.textAlign = 'center';
    ctx.textBaseline = 'middle';
    ctx.fillText('waiting for data…', pad.left + w / 2, pad.top + h / 2);
    return;
  }
  const tNow = points[points.length - 1].t;
  const xOf = (t) => pad.left + w - (w * (tNow - t)) / windowMs;
  const yOf = (v) => pad.top + h - (h * Math.min(v, max)) / max;

  for (const s of series) {
    const color = cssVar(s.color);
    // Runs of points with a value, broken where there is none.
    const runs = [];
    let run = [];
    for (const p of points) {
      const v = p[s.key];
      if (v == null || !Number.isFinite(v)) {
        if (run.length) runs.push(run);
        run = [];
      } else if (xOf(p.t) >= pad.left) {
        run.push([xOf(p.t), yOf(v)]);
      }
    }
    if (run.length) runs.push(run);
    for (const r of runs) {
      if (s.fill && r.length > 1) {
        ctx.beginPath();
        ctx.moveTo(r[0][0], pad.top + h);
        for (const [x, y] of r) ctx.lineTo(x, y);
        ctx.lineTo(r[r.length - 1][0], pad.top + h);
        ctx.closePath();
        ctx.globalAlpha = 0.15;
        ctx.fillStyle = color;
        ctx.fill();
        ctx.globalAlpha = 1;
      }
      ctx.beginPath();
      ctx.strokeStyle = color;
      ctx.lineWidth = 1.5;
      ctx.lineJoin = 'round';
      r.forEach(([x, y], i) => (i ? ctx.lineTo(x, y) : ctx.moveTo(x, y)));
      ctx.stroke();
      if (r.length === 1) {
        ctx.fillStyle = color;
        ctx.beginPath();
        ctx.arc(r[0][0], r[0][1], 2, 0, Math.PI * 2);
        ctx.fill();
      }
    }
  }
}

/** Short axis labels: 250µs, 1.5ms, 2s. */
function fmtAxisSeconds(s) {
  if (s === 0) return '0';
  const trim = (v) => String(Number(v.toPrecision(3)));
  if (s < 1e-3) return `${trim(s * 1e6)}µs`;
  if (s < 1) return `${trim(s * 1e3)}ms`;
  return `${trim(s)}s`;
}

function drawCharts() {
  $('#chart-calls').dataset.points = String(metrics.points.length);
  drawChart($('#chart-calls'), [{ key: 'calls', color: '--chart-1', fill: true }], fmtRate);
  drawChart(
    $('#chart-latency'),
    [
      { key: 'p50', color: '--chart-1' },
      { key: 'p99', color: '--chart-2' },
    ],
    fmtAxisSeconds,
  );
  drawChart($('#chart-errors'), [{ key: 'errors', color: '--chart-3', fill: true }], fmtRate);
}

// ---------------------------------------------------------------------------
// Cluster

async function refreshCluster() {
  let cluster;
  try {
    const res = await api('GET', '/api/v1/cluster');
    cluster = await res.json();
  } catch (e) {
    setText('#cluster-count', e.describe ? e.describe() : String(e), 'muted error');
    return;
  }
  const panel = $('#cluster-panel');
  panel.hidden = !cluster.enabled;
  if (!cluster.enabled) return;
  const nodes = cluster.nodes ?? [];
  const now = Date.now();
  $('#cluster-nodes tbody').replaceChildren(
    ...nodes.map((n) => {
      const me = n.id === cluster.node;
      const load = n.load ?? {};
      const beat = Date.parse(n.heartbeat_at);
      return el(
        'tr',
        { 'data-testid': 'cluster-node', dataset: { id: n.id }, class: me ? 'me' : '' },
        el('td', { class: 'mono', text: me ? `${n.id} (this node)` : n.id }),
        el('td', {}, el('a', { href: n.addr, text: n.addr })),
        el('td', { text: n.version ?? '' }),
        el('td', { text: `${load.running ?? 0} / ${load.slots ?? 0}${load.waiting ? ` · ${load.waiting} waiting` : ''}` }),
        el('td', { text: fmtCount(load.actors ?? 0) }),
        el('td', { text: Number.isFinite(beat) ? `${fmtDuration(Math.max(0, now - beat))} ago` : '—' }),
      );
    }),
  );
  setText('#cluster-count', `${cluster.name} · ${nodes.length} node${nodes.length === 1 ? '' : 's'}`, 'muted');
}

// ---------------------------------------------------------------------------
// Actors

async function refreshActors() {
  let actors;
  try {
    const res = await api('GET', '/api/v1/actors');
    actors = (await res.json()).actors ?? [];
  } catch (e) {
    setText('#actors-count', e.describe ? e.describe() : String(e), 'muted error');
    return;
  }
  actors.sort((a, b) => String(a.id).localeCompare(String(b.id)));
  const key = JSON.stringify(actors);
  if (key === state.actorsKey) return;
  state.actorsKey = key;
  $('#actors tbody').replaceChildren(
    ...actors.map((a) => {
      const forget = el('button', {
        type: 'button',
        class: 'small ghost',
        text: 'forget',
        title: `forget actor ${a.id}`,
        onclick: async () => {
          forget.disabled = true;
          try {
            await api('DELETE', `/api/v1/actors/${encodeURIComponent(a.id)}`, { write: true });
            state.actorsKey = '';
            await refreshActors();
          } catch (e) {
            setText('#actors-count', `forget failed: ${e.describe()}`, 'muted error');
            forget.disabled = false;
          }
        },
      });
      return el(
        'tr',
        { 'data-testid': 'actor', dataset: { id: a.id } },
        el('td', { class: 'mono', text: a.id }),
        el('td', { class: 'mono', text: a.module ?? '' }),
        el('td', { text: fmtCount(a.messages) }),
        el('td', { text: a.live === false ? `passivated · ${fmtDuration(a.idle_ms)}` : fmtDuration(a.idle_ms) }),
        el('td', {
          'data-testid': 'actor-snapshot',
          text: a.snapshot_bytes > 0 ? fmtBytes(a.snapshot_bytes) : '—',
          title: a.saved_at ? `saved ${a.saved_at} (${a.snapshots ?? 'stored'})` : `not saved (${a.snapshots ?? 'stored'})`,
        }),
        el('td', {}, forget),
      );
    }),
  );
  $('#actors-empty').hidden = actors.length > 0;
  setText('#actors-count', `${actors.length} known`, 'muted');
}

// ---------------------------------------------------------------------------
// Start

/** Runs `task` now and then every `ms`, never two at once, paused while hidden. */
function every(ms, task) {
  let running = false;
  const tick = async () => {
    if (running || document.hidden) return;
    running = true;
    try {
      await task();
    } finally {
      running = false;
    }
  };
  tick();
  setInterval(tick, ms);
}

function start() {
  const tokenInput = $('#token');
  tokenInput.value = token();
  tokenInput.addEventListener('input', () => {
    const value = tokenInput.value.trim();
    if (value) localStorage.setItem(TOKEN_KEY, value);
    else localStorage.removeItem(TOKEN_KEY);
  });

  $('#upload-form').addEventListener('submit', upload);
  $('#upload-file').addEventListener('change', async () => {
    const file = $('#upload-file').files[0];
    if (!file || $('#upload-name').value.trim()) return;
    const name = (isPacketFile(file) && (await packetName(file))) || nameFromFile(file.name);
    if (!$('#upload-name').value.trim()) $('#upload-name').value = name;
  });
  $('#call-form').addEventListener('submit', callOnServer);
  $('#function-select').addEventListener('change', (e) => chooseFunction(e.target.value));
  $('#browser-run-button').addEventListener('click', browserRun);
  window.addEventListener('resize', drawCharts);

  drawCharts();
  every(MODULES_EVERY_MS, refreshModules);
  every(ACTORS_EVERY_MS, refreshActors);
  every(ACTORS_EVERY_MS, refreshCluster);
  every(METRICS_EVERY_MS, scrapeMetrics);
  document.body.dataset.ready = 'true';
}

// The page, or the worker that runs guests for "Run in this browser".
if (typeof document === 'undefined') workerMain();
else start();
