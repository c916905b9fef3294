// The dashboard at `/`, driven in headless Chromium against a real `wasmhost serve`.
//
//   node dashboard.test.mjs   (with the environment scripts/browser-tests.sh sets)

import fs from 'node:fs';
import path from 'node:path';
import {
  GUESTS,
  check,
  eventually,
  launch,
  openPage,
  screenshot,
  startServer,
  tempDir,
  test,
  wasmhost,
} from './lib.mjs';

const NUMERIC_WAT = () => path.join(GUESTS, 'numeric.wat');
const COMPONENT = () => path.join(GUESTS, 'wit-component.wasm');

/** A real binary of guests/wat/numeric.wat: pushed into a scratch store (WAT is stored as binary) and pulled out. */
async function numericWasm() {
  const dir = tempDir();
  const state = path.join(dir, 'state');
  const out = path.join(dir, 'numeric.wasm');
  const push = await wasmhost(['push', '--state', state, NUMERIC_WAT(), 'numeric:v1']);
  check(push.code === 0, `wasmhost push numeric.wat: ${push.stderr}`);
  const pull = await wasmhost(['pull', '--state', state, 'numeric:v1', '-o', out]);
  check(pull.code === 0, `wasmhost pull: ${pull.stderr}`);
  const magic = fs.readFileSync(out).subarray(0, 4);
  check(magic.equals(Buffer.from([0, 0x61, 0x73, 0x6d])), 'the pulled module is wasm binary');
  return out;
}

/** Page problems other than the HTTP errors a test provoked on purpose (`allowed`: patterns). */
function unexpectedProblems(page, allowed = []) {
  return page.problems.filter((p) => !allowed.some((re) => re.test(p)));
}

const text = async (page, selector) => ((await page.textContent(selector)) ?? '').trim();

async function upload(page, file, name, tag) {
  await page.setInputFiles('#upload-file', file);
  await page.fill('#upload-name', name);
  await page.fill('#upload-tag', tag);
  await page.click('#upload-button');
  await page.waitForSelector('#upload-status[data-result]');
}

async function select(page, ref) {
  await page.click(`#modules li[data-ref="${ref}"]`);
  await page.waitForFunction(
    (r) => document.querySelector('#module-title')?.textContent === r && !document.querySelector('#module-detail').hidden,
    ref,
  );
}

/** Calls `fn` with `input` through the call form; resolves when the output shows. */
async function callForm(page, fn, input) {
  await page.selectOption('#function-select', fn);
  await page.fill('#call-input', input);
  await page.$eval('#call-output', (e) => delete e.dataset.result);
  await page.click('#call-button');
  await page.waitForSelector('#call-output[data-result="ok"], #call-output[data-result="error"]');
  return {
    result: await page.getAttribute('#call-output', 'data-result'),
    code: await page.getAttribute('#call-output', 'data-code'),
    output: await text(page, '#call-output'),
  };
}

/** The "Run in this browser" comparison for `fn` with `input`. */
async function browserRun(page, fn, input) {
  await page.selectOption('#function-select', fn);
  await page.fill('#call-input', input);
  await page.$eval('#agree', (e) => (e.dataset.agree = ''));
  await page.click('#browser-run-button');
  await page.waitForSelector('#agree[data-agree="true"], #agree[data-agree="false"]');
  return {
    agree: await page.getAttribute('#agree', 'data-agree'),
    browser: await text(page, '#browser-output'),
    server: await text(page, '#server-output'),
    browserTime: await text(page, '#browser-time'),
    serverTime: await text(page, '#server-time'),
    summary: await text(page, '#agree'),
  };
}

test('dashboard: upload, inspect, call, run in the browser, live charts, actors, delete', async () => {
  const wasm = await numericWasm();
  const server = await startServer();
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);

  check((await page.title()) === 'wasmhost', 'the page is the dashboard');
  await page.waitForSelector('body[data-ready="true"]');
  await eventually(async () => (await text(page, '#modules-count')) === '0 in the store', 'an empty store is listed');
  check(await page.isVisible('#modules-empty'), 'the empty-store hint shows');
  check(!(await page.isVisible('#auth-message')), 'no token message on a server without a token');
  await eventually(async () => (await page.getAttribute('#server-status', 'data-state')) === 'up', 'the server shows as up');

  // Upload a core module (binary) with the file picker.
  await upload(page, wasm, 'numeric', 'v1');
  check((await page.getAttribute('#upload-status', 'data-result')) === 'ok', `upload: ${await text(page, '#upload-status')}`);
  check((await text(page, '#upload-status')).includes('uploaded numeric:v1'), 'the upload status names the reference');
  await page.waitForSelector('#modules li[data-ref="numeric:v1"]');
  check((await page.getAttribute('#modules li[data-ref="numeric:v1"]', 'data-kind')) === 'core', 'listed as a core module');
  await screenshot(page, 'dashboard-loaded.png');

  // Inspect: functions, signatures and conventions.
  await select(page, 'numeric:v1');
  check((await text(page, '#module-kind')) === 'core', 'the kind badge says core');
  const functions = await page.$$eval('#functions tbody tr', (rows) =>
    rows.map((r) => [...r.cells].map((c) => c.textContent.trim())),
  );
  const add = functions.find((f) => f[0] === 'add_i32');
  check(add, `add_i32 is listed among ${JSON.stringify(functions)}`);
  check(/i32.*i32.*i32/.test(add[1]), `add_i32's signature: ${add[1]}`);
  check(add[2].includes('numeric'), `add_i32's conventions: ${add[2]}`);
  const options = await page.$$eval('#function-select option', (o) => o.map((x) => x.value));
  for (const f of ['add_i32', 'add_i64', 'mul_f32', 'mul_f64', 'pair', 'answer']) {
    check(options.includes(f), `${f} can be chosen (options: ${options})`);
  }

  // Call on the server.
  const call = await callForm(page, 'add_i32', '[2, 3]');
  check(call.result === 'ok', `the call succeeded: ${call.output}`);
  check(call.output === '5', `add_i32 [2, 3] = 5, shown as ${JSON.stringify(call.output)}`);
  const time = await text(page, '#call-time');
  check(/^\d+(\.\d+)? (µs|ms|s)$/.test(time), `the call's time (X-Wasmhost-Duration-Us) is shown: ${time}`);
  const memory = await text(page, '#call-memory');
  check(memory === '64.0 KiB', `the peak memory (X-Wasmhost-Memory-Bytes) is one page: ${memory}`);
  check((await text(page, '#call-fuel')) === 'not metered', 'fuel is not metered by default');
  await screenshot(page, 'dashboard-call.png');

  // Run in this browser, beside the server.
  const run = await browserRun(page, 'add_i32', '[2, 3]');
  check(run.agree === 'true', `browser and server agree: ${run.summary}`);
  check(run.browser === '5', `the browser computed 5: ${run.browser}`);
  check(run.server === '5', `the server computed 5: ${run.server}`);
  check(/instantiate \+ call/.test(run.browserTime), `the browser's time shows: ${run.browserTime}`);
  check(/call .*(µs|ms|s)/.test(run.serverTime), `the server's time shows: ${run.serverTime}`);
  await screenshot(page, 'dashboard-browser-run.png');

  // An error shows its code.
  const bad = await callForm(page, 'add_i32', '[1]');
  check(bad.result === 'error', `add_i32 [1] fails: ${bad.output}`);
  check(bad.code === 'bad_input' && bad.output.startsWith('error[bad_input]'), `the error shows its code: ${bad.output}`);

  for (const [fn, input, want] of [
    ['pair', '[7]', '7\n8'], // two results
    ['mul_f64', '[1.5, 2]', '3'],
    ['mul_f32', '[1.1, 3]', null], // f32 rounding on both sides
    ['add_i64', '[9007199254740993, 1]', '9007199254740994'], // beyond 2^53: BigInt
    ['answer', '[]', '42'],
  ]) {
    const r = await browserRun(page, fn, input);
    check(r.agree === 'true', `${fn} ${input}: agree (${r.summary}; browser ${r.browser}; server ${r.server})`);
    if (want != null) check(r.browser === want, `${fn} ${input} in the browser: ${JSON.stringify(r.browser)}`);
  }

  // A trap fails on both sides, each with its code.
  await upload(page, path.join(GUESTS, 'divzero.wat'), 'divzero', 'v1');
  await page.waitForSelector('#modules li[data-ref="divzero:v1"]');
  await select(page, 'divzero:v1');
  const div = await browserRun(page, 'div', '[7, 2]');
  check(div.agree === 'true' && div.browser === '3', `div [7, 2]: ${div.summary}`);
  const trap = await browserRun(page, 'div', '[1, 0]');
  check(trap.agree === 'true', `div [1, 0] fails on both sides: ${trap.summary}`);
  check(trap.browser.startsWith('error[trap]'), `the browser's trap: ${trap.browser}`);
  check(/^error\[\w+\]/.test(trap.server), `the server's error has a code: ${trap.server}`);
  await select(page, 'numeric:v1');

  // Live charts: calls/s and latency percentiles from /metrics.
  await eventually(
    async () => {
      await callForm(page, 'add_i32', '[2, 3]');
      const rate = await text(page, '#calls-rate');
      const p50 = await text(page, '#latency-p50');
      return rate !== '–' && Number(rate) > 0 && p50 !== '–';
    },
    'calls/s and p50 latency show after calls',
    { timeout: 20_000, every: 700 },
  );
  check((await text(page, '#errors-rate')) !== '–', 'errors/s shows');
  const p99 = await text(page, '#latency-p99');
  check(/(µs|ms|s)$/.test(p99), `p99 latency shows: ${p99}`);
  const drawn = await page.$eval('#chart-calls', (c) => {
    const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let painted = 0;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted += 1;
    return painted;
  });
  check(drawn > 100, `the calls chart has been drawn (${drawn} pixels)`);
  // A few more scrapes with calls in between, so the screenshot shows lines.
  await eventually(
    async () => {
      await callForm(page, 'add_i32', '[2, 3]');
      return Number(await page.getAttribute('#chart-calls', 'data-points')) >= 4;
    },
    'four scrapes of /metrics',
    { timeout: 20_000, every: 300 },
  );
  await screenshot(page, 'dashboard-live.png');

  // Actors: one message creates one; the list shows it.
  const sent = await fetch(`${server.url}/api/v1/actors/counter-1?module=numeric:v1&function=counter`, {
    method: 'POST',
    body: '',
  });
  check(sent.ok, `POST /api/v1/actors/counter-1: ${sent.status} ${await sent.text()}`);
  await page.waitForSelector('#actors tr[data-id="counter-1"]', { timeout: 15_000 });
  const actorRow = await page.$$eval('#actors tr[data-id="counter-1"] td', (cells) => cells.map((c) => c.textContent.trim()));
  check(actorRow[1].includes('numeric'), `the actor's module: ${actorRow}`);
  check(actorRow[2] === '1', `the actor got one message: ${actorRow}`);
  // Its state was saved with the message: the snapshot's size is shown.
  check(/^\d+(\.\d+)? (B|KiB)$/.test(actorRow[4]), `the actor's snapshot size: ${actorRow}`);
  await screenshot(page, 'dashboard-actors.png');

  // A component runs in the browser through jco (components.test.mjs runs it).
  await upload(page, COMPONENT(), 'wit-component', 'v1');
  await page.waitForSelector('#modules li[data-ref="wit-component:v1"]');
  await select(page, 'wit-component:v1');
  check((await text(page, '#module-kind')) === 'component', 'the component is a component');
  check(!(await page.isDisabled('#browser-run-button')), 'a component can be run in the browser');
  check((await text(page, '#browser-note')).includes('with jco'), 'the page says how');

  // Delete (two clicks) removes it from the list and clears the selection.
  const del = '#modules li[data-ref="wit-component:v1"] button.delete';
  await page.click(del);
  await page.click(del);
  await page.waitForSelector('#modules li[data-ref="wit-component:v1"]', { state: 'detached' });
  check((await text(page, '#module-title')) === 'No module selected', 'the deleted module is no longer selected');
  const listed = await (await fetch(`${server.url}/api/v1/modules`)).json();
  check(!listed.modules.some((m) => m.reference === 'wit-component:v1'), 'the API no longer lists it');

  const problems = unexpectedProblems(page, [/^HTTP [45]\d\d POST \S+\/call\//]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});

test('dashboard: a guest that never returns is stopped on both sides, and the page stays usable', async () => {
  const server = await startServer(['--timeout', '1s']);
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await upload(page, path.join(GUESTS, 'loop.wat'), 'loop', 'v1');
  await page.waitForSelector('#modules li[data-ref="loop:v1"]');
  await select(page, 'loop:v1');
  const spin = await browserRun(page, 'run', '[]');
  check(spin.browser.startsWith('error[timeout]'), `the browser's worker was stopped: ${spin.browser}`);
  check(spin.server.startsWith('error[timeout]'), `the server's deadline: ${spin.server}`);
  check(spin.agree === 'true', `both failed: ${spin.summary}`);
  const ok = await browserRun(page, 'ok', '[]');
  check(ok.agree === 'true' && ok.browser === '1', `the next run works: ${ok.summary}`);
  const problems = unexpectedProblems(page, [/^HTTP [45]\d\d POST \S+\/call\//]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});

test('dashboard: a server with --token refuses uploads without it, the token field fixes that', async () => {
  const server = await startServer(['--token', 'secret']);
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await eventually(async () => (await text(page, '#modules-count')) === '0 in the store', 'reads need no token');

  // WAT text through the picker: the store keeps it as binary.
  await upload(page, NUMERIC_WAT(), 'numeric', 'v1');
  check((await page.getAttribute('#upload-status', 'data-result')) === 'error', 'the upload without a token failed');
  check(await page.isVisible('#auth-message'), 'the token message shows');
  check((await text(page, '#auth-message')).includes('this server needs a token'), await text(page, '#auth-message'));
  check((await text(page, '#upload-status')).includes('this server needs a token'), await text(page, '#upload-status'));
  await screenshot(page, 'dashboard-token-needed.png');

  await page.fill('#token', 'secret');
  await page.$eval('#upload-status', (e) => delete e.dataset.result);
  await page.click('#upload-button');
  await page.waitForSelector('#upload-status[data-result]');
  check((await page.getAttribute('#upload-status', 'data-result')) === 'ok', `with the token: ${await text(page, '#upload-status')}`);
  await page.waitForSelector('#modules li[data-ref="numeric:v1"]');
  check(!(await page.isVisible('#auth-message')), 'the token message is gone after a write succeeded');

  // The token is remembered across reloads, and the stored WAT runs in the browser.
  await page.reload();
  await page.waitForSelector('body[data-ready="true"]');
  check((await page.inputValue('#token')) === 'secret', 'the token is kept in localStorage');
  await page.waitForSelector('#modules li[data-ref="numeric:v1"]');
  await select(page, 'numeric:v1');
  const run = await browserRun(page, 'add_i32', '[20, 22]');
  check(run.agree === 'true' && run.browser === '42', `uploaded WAT runs in the browser: ${run.summary}`);

  const problems = unexpectedProblems(page, [/^HTTP 401 POST \S+\/api\/v1\/modules\?/]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});

test('dashboard: at /dashboard when a worker owns /', async () => {
  const server = await startServer([path.join(GUESTS, 'wasi-echo.wasm')]);
  const echo = await fetch(`${server.url}/`, { method: 'POST', body: 'hello' });
  check(echo.ok && (await echo.text()) === 'hello', 'the worker answers at /');
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/dashboard`);
  await page.waitForSelector('body[data-ready="true"]');
  await eventually(async () => (await text(page, '#modules-count')) === '0 in the store', 'the page works at /dashboard');
  await upload(page, NUMERIC_WAT(), 'numeric', 'v1');
  await page.waitForSelector('#modules li[data-ref="numeric:v1"]');
  await select(page, 'numeric:v1');
  const call = await callForm(page, 'add_i32', '[40, 2]');
  check(call.output === '42', `a call from /dashboard: ${call.output}`);
  check(page.problems.length === 0, `no errors in the page: ${page.problems.join('; ')}`);
});

test('dashboard: assets are embedded, typed and not cached stale', async () => {
  const server = await startServer();
  const index = await fetch(`${server.url}/`);
  check(index.status === 200, `GET /: ${index.status}`);
  check(index.headers.get('content-type').startsWith('text/html'), `GET / content type: ${index.headers.get('content-type')}`);
  for (const [file, type] of [
    ['dashboard.js', 'text/javascript'],
    ['dashboard.css', 'text/css'],
  ]) {
    const res = await fetch(`${server.url}/assets/${file}`);
    check(res.status === 200, `GET /assets/${file}: ${res.status}`);
    check(res.headers.get('content-type').startsWith(type), `${file}: ${res.headers.get('content-type')}`);
    check(res.headers.get('cache-control') === 'no-cache', `${file}: cache-control ${res.headers.get('cache-control')}`);
  }
  const missing = await fetch(`${server.url}/assets/nope.js`);
  check(missing.status === 404, `GET /assets/nope.js: ${missing.status}`);
  const body = await missing.json();
  check(body.error?.code === 'not_found', `the 404 is the API's JSON error: ${JSON.stringify(body)}`);
});
