// The page's JavaScript only moves bytes: into and out of matrix.wasm (the
// same module the workers run) and over HTTP to the workers. Making the
// matrices, splitting them into blocks, assembling the product and comparing
// it are exports of the module; see examples/matrix-multiply/README.md for
// their byte formats.

const $ = (id) => document.getElementById(id);
const COLORS = ['#3b73c4', '#e07b28', '#3e9a52', '#c9424a', '#8a5fb8', '#7d6a55'];

// --- matrix.wasm, called with wasmhost's raw convention ----------------------

/** A failure the module reported through `env.abort`. */
class GuestError extends Error {}

/** One instance of matrix.wasm; `call` works like wasmhost's raw transfer. */
class Matrix {
  static async instantiate(module) {
    const self = new Matrix();
    const env = {
      // AssemblyScript's abort, which the module uses to report bad input.
      abort: (message, file, line, column) => {
        const text = self.string(message) ?? 'abort';
        const where = self.string(file);
        throw new GuestError(where ? `${text} (${where}:${line}:${column})` : text);
      },
    };
    self.exports = (await WebAssembly.instantiate(module, { env })).exports;
    return self;
  }

  /** An AssemblyScript string: UTF-16LE, its byte length in the u32 before it. */
  string(ptr) {
    if (!ptr) return null;
    const buffer = this.exports.memory.buffer;
    const len = new DataView(buffer).getUint32(ptr - 4, true);
    return new TextDecoder('utf-16le').decode(new Uint8Array(buffer, ptr, len));
  }

  /** Copies `input` in, calls `name(ptr, len)`, copies the packed result out. */
  call(name, input) {
    const ex = this.exports;
    const ptr = ex.alloc(input.length) >>> 0;
    if (ptr === 0) throw new Error(`alloc(${input.length}) failed`);
    new Uint8Array(ex.memory.buffer, ptr, input.length).set(input);
    const packed = BigInt.asUintN(64, ex[name](ptr, input.length));
    ex.dealloc(ptr, input.length);
    const outPtr = Number(packed >> 32n);
    const outLen = Number(packed & 0xffffffffn);
    if (outPtr === 0 && outLen === 0) return new Uint8Array(0);
    const out = new Uint8Array(ex.memory.buffer, outPtr, outLen).slice();
    ex.dealloc(outPtr, outLen);
    return out;
  }
}

const u32s = (...values) => {
  const out = new Uint8Array(4 * values.length);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setUint32(4 * i, v, true));
  return out;
};
const concat = (...parts) => {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) { out.set(p, at); at += p.length; }
  return out;
};

/** The tasks `split` returns: a 16-byte placement and a request each. */
function parseTasks(bytes) {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tasks = [];
  let at = 4;
  for (let i = view.getUint32(0, true); i > 0; i--) {
    const [row, col, rows, cols, len] = [0, 4, 8, 12, 16].map((o) => view.getUint32(at + o, true));
    tasks.push({ placement: bytes.subarray(at, at + 16), row, col, rows, cols,
                 body: bytes.subarray(at + 20, at + 20 + len) });
    at += 20 + len;
  }
  return tasks;
}

// --- the page ----------------------------------------------------------------

const params = new URLSearchParams(location.search);
$('workers').value = (params.get('workers') ?? location.origin)
  .split(',').map((w) => w.trim()).filter(Boolean).join(', ');

let modulePromise = null;

async function loadModule() {
  const url = new URL('matrix.wasm', import.meta.url);
  const res = await fetch(url);
  if (!res.ok) throw new Error(`GET ${url} answered ${res.status}`);
  return WebAssembly.compile(await res.arrayBuffer());
}

function setStatus(text, error = '') {
  $('status').textContent = text;
  $('status').className = text;
  $('error').textContent = error;
}

function int(id, min) {
  const v = Number($(id).value);
  if (!Number.isInteger(v) || v < min || v > 0xffffffff) {
    throw new Error(`${id} must be a whole number of at least ${min}`);
  }
  return v;
}

const ms = (t) => `${t.toFixed(1)} ms`;

async function run() {
  const n = int('n', 0), k = int('k', 0), m = int('m', 0), seed = int('seed', 0);
  const blockRows = int('block-rows', 1), blockCols = int('block-cols', 1);
  const workers = $('workers').value.split(',').map((w) => w.trim().replace(/\/+$/, '')).filter(Boolean);
  if (workers.length === 0) throw new Error('no workers: give at least one base URL');

  const timings = [];
  const timed = async (label, f) => {
    const t0 = performance.now();
    const value = await f();
    timings.push([label, performance.now() - t0]);
    return value;
  };
  const started = performance.now();
  // A fresh instance per run, as wasmhost gives each call a fresh sandbox.
  const wasm = await Matrix.instantiate(await modulePromise);
  const request = await timed('generate A and B (wasm)', () => wasm.call('generate', u32s(n, k, m, seed)));
  const tasks = await timed('split into blocks (wasm)', () =>
    parseTasks(wasm.call('split', concat(u32s(blockRows, blockCols), request))));

  const perWorker = workers.map((url) => ({ url, blocks: 0, sent: 0, received: 0, ms: 0 }));
  const results = await timed(`${tasks.length} blocks on ${workers.length} worker(s) (HTTP)`, () =>
    Promise.all(tasks.map(async (task, i) => {
      const w = perWorker[i % workers.length];
      const t0 = performance.now();
      const res = await fetch(`${w.url}/multiply`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/octet-stream' },
        body: task.body,
      });
      const bytes = new Uint8Array(await res.arrayBuffer());
      if (!res.ok) {
        throw new Error(`${w.url}/multiply answered ${res.status}: ${new TextDecoder().decode(bytes)}`);
      }
      w.blocks += 1;
      w.sent += task.body.length;
      w.received += bytes.length;
      w.ms += performance.now() - t0;
      task.worker = i % workers.length;
      return bytes;
    })));

  const c = await timed('assemble C (wasm)', () =>
    wasm.call('assemble', concat(u32s(n, m, tasks.length), ...tasks.flatMap((t, i) => [t.placement, results[i]]))));
  const local = await timed('multiply locally (wasm)', () => wasm.call('multiply', request));
  const cmp = await timed('compare (wasm)', () => wasm.call('compare', concat(u32s(n * m), c, local)));
  const total = performance.now() - started;

  const view = new DataView(cmp.buffer);
  const diff = view.getFloat64(0, true), worst = view.getUint32(8, true), equal = view.getUint32(12, true) === 1;
  setStatus(equal ? 'correct' : 'WRONG');
  const at = diff === 0 ? '' : ` at C[${Math.floor(worst / m)}][${worst % m}]`;
  $('summary').textContent =
    `C = A·B is ${n}×${m} (A ${n}×${k}, B ${k}×${m}), split into ${tasks.length} blocks of at most ` +
    `${blockRows}×${blockCols}; max |distributed − local| = ${diff === 0 ? '0' : diff.toExponential(3)}${at} ` +
    `(tolerance 1e-9).`;
  showTimings([...timings, ['total', total]]);
  showWorkers(perWorker, tasks, n, m);
}

function showTimings(rows) {
  const table = $('timings');
  table.replaceChildren(...rows.map(([label, t]) => {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td></td><td class="num"></td>';
    tr.cells[0].textContent = label;
    tr.cells[1].textContent = ms(t);
    return tr;
  }));
}

function showWorkers(perWorker, tasks, n, m) {
  $('worker-counts').replaceChildren(...perWorker.map((w, i) => {
    const li = document.createElement('li');
    li.dataset.worker = w.url;
    li.dataset.blocks = String(w.blocks);
    li.innerHTML = '<span class="swatch"></span><span></span>';
    li.firstChild.style.background = COLORS[i % COLORS.length];
    li.lastChild.textContent = `${w.url}: ${w.blocks} block${w.blocks === 1 ? '' : 's'}, ` +
      `${(w.sent / 1024).toFixed(1)} KiB sent, ${(w.received / 1024).toFixed(1)} KiB back` +
      (w.blocks ? `, ${ms(w.ms / w.blocks)} per block` : '');
    return li;
  }));
  // A map of C: one cell per block, coloured by the worker that computed it.
  const grid = $('blocks');
  const rowStarts = [...new Set(tasks.map((t) => t.row))];
  const colStarts = [...new Set(tasks.map((t) => t.col))];
  const size = (starts, sizes) => starts.map((s) => `${sizes.get(s)}fr`).join(' ');
  grid.style.gridTemplateRows = size(rowStarts, new Map(tasks.map((t) => [t.row, t.rows])));
  grid.style.gridTemplateColumns = size(colStarts, new Map(tasks.map((t) => [t.col, t.cols])));
  grid.style.setProperty('--aspect', n && m ? String(Math.min(4, Math.max(0.25, m / n))) : '1');
  grid.replaceChildren(...tasks.map((t) => {
    const cell = document.createElement('div');
    cell.style.background = COLORS[t.worker % COLORS.length];
    cell.textContent = `w${t.worker + 1}`;
    cell.title = `rows ${t.row}..${t.row + t.rows}, columns ${t.col}..${t.col + t.cols}: ${perWorker[t.worker].url}`;
    return cell;
  }));
}

$('form').addEventListener('submit', async (event) => {
  event.preventDefault();
  $('run').disabled = true;
  setStatus('running');
  try {
    await run();
  } catch (e) {
    console.error(e);
    setStatus('error', e instanceof GuestError ? `matrix.wasm: ${e.message}` : String(e.message ?? e));
  } finally {
    $('run').disabled = false;
  }
});

modulePromise = loadModule();
modulePromise.then(
  () => { setStatus('ready'); $('run').disabled = false; },
  (e) => setStatus('error', `could not load matrix.wasm: ${e.message}`),
);
