// Components in the dashboard's "Run in this browser": transpiled by jco in
// the page's worker, called with the same JSON arguments as the server's
// component call, and compared; packet manifests uploaded and run both ways.
//
//   node components.test.mjs   (with the environment scripts/browser-tests.sh sets)

import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { GUESTS, check, launch, openPage, screenshot, startServer, tempDir, test } from './lib.mjs';

const COMPONENT = () => path.join(GUESTS, 'wit-component.wasm');

const text = async (page, selector) => ((await page.textContent(selector)) ?? '').trim();

/** Page problems other than the HTTP errors a test provoked on purpose. */
function unexpectedProblems(page, allowed = []) {
  return page.problems.filter((p) => !allowed.some((re) => re.test(p)));
}

async function upload(page, file, name = '') {
  await page.$eval('#upload-status', (e) => delete e.dataset.result);
  await page.setInputFiles('#upload-file', file);
  if (name) await page.fill('#upload-name', name);
  await page.click('#upload-button');
  await page.waitForSelector('#upload-status[data-result]');
  return { result: await page.getAttribute('#upload-status', 'data-result'), status: await text(page, '#upload-status') };
}

async function select(page, ref) {
  await page.waitForSelector(`#modules li[data-ref="${ref}"]`);
  await page.click(`#modules li[data-ref="${ref}"]`);
  await page.waitForFunction(
    (r) => document.querySelector('#module-title')?.textContent === r && !document.querySelector('#module-detail').hidden,
    ref,
  );
}

/** "Run here and on the server" for `fn` with `input`; resolves when both sides answered. */
async function browserRun(page, fn, input) {
  await page.selectOption('#function-select', fn);
  await page.fill('#call-input', input);
  await page.$eval('#agree', (e) => (e.dataset.agree = ''));
  await page.click('#browser-run-button');
  await page.waitForSelector('#agree[data-agree="true"], #agree[data-agree="false"]', { timeout: 60_000 });
  return {
    agree: await page.getAttribute('#agree', 'data-agree'),
    browser: await text(page, '#browser-output'),
    server: await text(page, '#server-output'),
    browserCode: await page.getAttribute('#browser-output', 'data-code'),
    serverCode: await page.getAttribute('#server-output', 'data-code'),
    browserTime: await text(page, '#browser-time'),
    serverTime: await text(page, '#server-time'),
    summary: await text(page, '#agree'),
  };
}

/** JSON text without its whitespace and with sorted keys, to compare with what the page shows. */
const compact = (s) =>
  JSON.stringify(JSON.parse(s), (k, v) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => a.localeCompare(b))) : v,
  );

test('components: each export runs in the browser through jco and agrees with the server', async () => {
  // The guest imports wasmhost:example/host, which the server provides to no
  // one: linked to traps on the server, as the browser stubs it.
  const server = await startServer(['--trap-unknown-imports']);
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');

  const up = await upload(page, COMPONENT(), 'shapes');
  check(up.result === 'ok', `upload: ${up.status}`);
  await select(page, 'shapes:latest');
  check((await text(page, '#module-kind')) === 'component', 'the kind badge says component');
  check(!(await page.isDisabled('#browser-run-button')), 'a component can run in the browser');
  check((await text(page, '#browser-note')).includes('jco'), `the note says how: ${await text(page, '#browser-note')}`);

  // Values of every kind the guest's world has, each compared with the server's.
  const cases = [
    ['add-points', '[{"x": 1, "y": 2}, {"x": 3, "y": 4}]', '{"x": 4, "y": 6}'],
    ['add-points', '{"a": {"x": -5, "y": 0}, "b": {"x": 2, "y": 2147483647}}', '{"x": -3, "y": 2147483647}'],
    ['area', '{"circle": 2.0}', String(Math.PI * 2 * 2)],
    ['area', '{"rect": {"x": 3, "y": -4}}', '12'],
    ['area', '"empty"', '0'],
    ['sum', '[1, 2, -4]', '-1'],
    ['find', '[["a", "b", "c"], "c"]', '2'],
    ['find', '[["a"], "z"]', 'null'],
    ['divide', '[7, 2]', '{"ok": 3}'],
    ['divide', '[1, 0]', '{"err": "division by zero"}'],
    ['describe', '["green", ["read", "write"]]', '"green rw-"'],
    ['greet-person', '{"name": "Ann", "age": 30, "tags": ["a", "b"]}', '"Hi Ann (30) [a,b]"'],
    ['echo-person', '{"name": "Bo", "age": 255, "email": "bo@example.com", "tags": []}', '{"name": "Bo", "age": 255, "email": "bo@example.com", "tags": []}'],
  ];
  let first = true;
  for (const [fn, input, want] of cases) {
    const run = await browserRun(page, fn, input);
    check(run.agree === 'true', `${fn} ${input}: ${run.summary}\n  browser: ${run.browser}\n  server: ${run.server}`);
    check(compact(run.browser) === compact(want), `${fn} ${input} in the browser: ${run.browser}, want ${want}`);
    check(compact(run.server) === compact(run.browser), `${fn}: the server shows ${run.server}, the browser ${run.browser}`);
    check(/instantiate \+ call .+ mean of \d+ · jco transpile .+ compile/.test(run.browserTime), `the browser's times: ${run.browserTime}`);
    check(/^call .+X-Wasmhost-Duration-Us.+round trip/.test(run.serverTime), `the server's times: ${run.serverTime}`);
    if (first) {
      await screenshot(page, 'components-add-points.png');
      first = false;
    }
  }

  // An s64 beyond 2^53 keeps every digit on both sides (a double would round it).
  const big = await browserRun(page, 'sum', '[9007199254740993, 1, -1]');
  check(big.agree === 'true' && big.browser === '9007199254740993' && big.server === '9007199254740993', `exact s64: ${big.summary}`);

  // Failures agree too: the same bad argument is refused on both sides, and
  // the import nobody provides stops the call with a trap on both.
  const bad = await browserRun(page, 'area', '{"square": 1}');
  check(bad.agree === 'true' && bad.browserCode === 'bad_input' && bad.serverCode === 'bad_input', `a bad variant case: ${bad.summary}`);
  check(bad.browser.includes('unknown case `square`'), `the browser says why: ${bad.browser}`);
  const host = await browserRun(page, 'call-host', '"web"');
  check(host.agree === 'true' && host.browserCode === 'trap' && host.serverCode === 'trap', `an unprovided import: ${host.summary}\n  ${host.browser}\n  ${host.server}`);
  check(host.browser.includes('wasmhost:example/host'), `the browser names the import: ${host.browser}`);

  // Arguments by parameter name, as the server takes them.
  const again = await browserRun(page, 'describe', '{"c": "blue", "p": ["exec"]}');
  check(again.agree === 'true' && again.browser === '"blue --x"', `arguments by name: ${again.summary}`);
  await screenshot(page, 'components-agree.png');

  const problems = unexpectedProblems(page, [/^HTTP [45]\d\d POST \S+\/call\//]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});

test('components: the page says when the two sides differ', async () => {
  // Without --trap-unknown-imports the server refuses to link the guest's
  // host import, while the browser stubs it: the page must not call that agreement.
  const server = await startServer();
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');
  await upload(page, COMPONENT(), 'shapes');
  await select(page, 'shapes:latest');
  const run = await browserRun(page, 'add-points', '[{"x": 1, "y": 1}, {"x": 1, "y": 1}]');
  check(run.agree === 'false', `the sides differ: ${run.summary}`);
  check(run.serverCode === 'link_error', `the server cannot link it: ${run.server}`);
  check(compact(run.browser) === '{"x":2,"y":2}', `the browser ran it: ${run.browser}`);
  check(run.summary.includes('only the server failed') && run.summary.includes('--trap-unknown-imports'), `the page says why: ${run.summary}`);
  await screenshot(page, 'components-differ.png');
  const problems = unexpectedProblems(page, [/^HTTP [45]\d\d POST \S+\/call\//]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});

test('components: a packet manifest uploads in the dashboard and runs both ways', async () => {
  const server = await startServer(['--trap-unknown-imports']);
  const browser = await launch();
  const page = await openPage(browser, `${server.url}/`);
  await page.waitForSelector('body[data-ready="true"]');

  const wasm = fs.readFileSync(COMPONENT());
  const dir = tempDir();
  const packet = (worldVersion) => ({
    name: 'Shapes Packet',
    sourceContent: [
      { origin: 'local', format: 'wasm', lrl: 'wit-component.wasm', worldVersion, contentB64: wasm.toString('base64') },
    ],
  });
  const good = path.join(dir, 'packet.json');
  fs.writeFileSync(good, JSON.stringify(packet('v1'), null, 2));

  // The name comes from the packet's own `name`.
  await page.setInputFiles('#upload-file', good);
  await page.waitForFunction(() => document.querySelector('#upload-name').value === 'shapes-packet');
  const up = await upload(page, good);
  check(up.result === 'ok', `packet upload: ${up.status}`);
  check(up.status.includes('uploaded shapes-packet:latest from packet Shapes Packet (wit-component.wasm, world v1)'), up.status);
  // Stored as the module it carries: the same digest as the component's bytes.
  const digest = `sha256:${crypto.createHash('sha256').update(wasm).digest('hex')}`;
  const info = await (await fetch(`${server.url}/api/v1/modules/shapes-packet:latest`)).json();
  check(info.digest === digest && info.kind === 'component', `stored by digest: ${info.digest} (${info.kind}), want ${digest}`);

  await select(page, 'shapes-packet:latest');
  const run = await browserRun(page, 'greet-person', '{"name": "Cy", "age": 7, "email": "cy@example.com", "tags": ["x"]}');
  check(run.agree === 'true', `the packet's component, both ways: ${run.summary}`);
  check(run.browser === '"Hi Cy (7) cy@example.com [x]"' && run.server === run.browser, `${run.browser} / ${run.server}`);
  await screenshot(page, 'components-packet.png');

  // A packet this host can't run is refused with the field that is wrong.
  const bad = path.join(dir, 'bad-packet.json');
  fs.writeFileSync(bad, JSON.stringify(packet('v2')));
  const refused = await upload(page, bad, 'bad');
  check(refused.result === 'error', `a v2 packet is refused: ${refused.status}`);
  check(refused.status.includes('error[bad_input]') && refused.status.includes('sourceContent[0].worldVersion'), refused.status);

  const problems = unexpectedProblems(page, [/^HTTP 400 POST \S+\/api\/v1\/modules\?/]);
  check(problems.length === 0, `no errors in the page: ${problems.join('; ')}`);
});
