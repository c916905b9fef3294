// examples/matrix-multiply in headless Chromium: a page whose logic is
// matrix.wasm splits a product into blocks, two `wasmhost serve` workers
// multiply them (`--route /multiply=matrix.wasm,mode=function,function=multiply`),
// and the page checks the assembled product against its own.
//
//   node matrix.test.mjs   (with the environment scripts/browser-tests.sh sets)

import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GUESTS, check, launch, openPage, screenshot, startServer, tempDir, test } from './lib.mjs';

const WEB = fileURLToPath(new URL('../../examples/matrix-multiply/web', import.meta.url));

/** A static directory like run.sh's: the page plus matrix.wasm from the guest build. */
function webDir() {
  const module = path.join(GUESTS, 'matrix.wasm');
  check(fs.existsSync(module), `${module} is missing: run scripts/build-guests.sh`);
  const web = path.join(tempDir('wasmhost-matrix-'), 'web');
  fs.cpSync(WEB, web, { recursive: true });
  fs.copyFileSync(module, path.join(web, 'matrix.wasm'));
  return web;
}

const route = (web) => `/multiply=${path.join(web, 'matrix.wasm')},mode=function,function=multiply`;

const u32s = (...values) => {
  const out = Buffer.alloc(4 * values.length);
  values.forEach((v, i) => out.writeUInt32LE(v, 4 * i));
  return out;
};
const f64s = (...values) => {
  const out = Buffer.alloc(8 * values.length);
  values.forEach((v, i) => out.writeDoubleLE(v, 8 * i));
  return out;
};

test('the page multiplies through two workers and checks the product', async () => {
  const web = webDir();
  const w1 = await startServer(['--route', route(web), '--cors', '*', '--static', `/app=${web}`]);
  const w2 = await startServer(['--route', route(web), '--cors', '*']);
  const browser = await launch();
  const page = await openPage(browser, `${w1.url}/app/index.html?workers=${w1.url},${w2.url}`);
  await page.waitForFunction(() => document.querySelector('#status').textContent !== 'loading');
  check((await page.textContent('#status')) === 'ready', `status after loading: ${await page.textContent('#status')} ${await page.textContent('#error')}`);
  check((await page.inputValue('#workers')) === `${w1.url}, ${w2.url}`, 'the workers come from ?workers=');

  await page.click('#run');
  await page.waitForFunction(() => !['ready', 'running'].includes(document.querySelector('#status').textContent), null, { timeout: 60_000 });
  const status = await page.textContent('#status');
  check(status === 'correct', `#status is ${status}: ${await page.textContent('#error')} ${await page.textContent('#summary')}`);
  const summary = await page.textContent('#summary');
  check(summary.includes('64×80') && summary.includes('12 blocks'), `summary: ${summary}`);

  const counts = await page.$$eval('#worker-counts li', (items) => items.map((li) => [li.dataset.worker, Number(li.dataset.blocks)]));
  check(counts.length === 2, `two workers listed: ${JSON.stringify(counts)}`);
  check(counts[0][0] === w1.url && counts[1][0] === w2.url, `worker URLs: ${JSON.stringify(counts)}`);
  check(counts.every(([, n]) => n === 6), `the 12 blocks went round-robin, 6 each: ${JSON.stringify(counts)}`);
  check((await page.$$('#blocks div')).length === 12, 'the block map has 12 cells');
  check(page.problems.length === 0, `page problems: ${page.problems.join('; ')}`);
  await screenshot(page, 'matrix.png');

  // Another shape, with blocks that do not divide it evenly.
  await page.fill('#n', '37');
  await page.fill('#k', '19');
  await page.fill('#m', '23');
  await page.fill('#block-rows', '10');
  await page.fill('#block-cols', '7');
  await page.click('#run');
  await page.waitForFunction(() => {
    const s = document.querySelector('#status').textContent;
    return s === 'error' || s === 'WRONG' || (s === 'correct' && document.querySelector('#summary').textContent.includes('37×23'));
  }, null, { timeout: 60_000 });
  check((await page.textContent('#status')) === 'correct', `37x19 by 19x23: ${await page.textContent('#status')} ${await page.textContent('#error')}`);
  const counts2 = await page.$$eval('#worker-counts li', (items) => items.map((li) => Number(li.dataset.blocks)));
  check(counts2[0] === 8 && counts2[1] === 8, `16 blocks, 8 each: ${counts2}`);
});

test('a worker answers POST /multiply with the product, cross-origin, and explains bad input', async () => {
  const web = webDir();
  const w = await startServer(['--route', route(web), '--cors', '*']);
  // [[1 2 3] [4 5 6]] · [[7 8] [9 10] [11 12]] = [[58 64] [139 154]]
  const body = Buffer.concat([u32s(2, 3, 2), f64s(1, 2, 3, 4, 5, 6), f64s(7, 8, 9, 10, 11, 12)]);
  const res = await fetch(`${w.url}/multiply`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/octet-stream', Origin: 'http://example.test' },
    body,
  });
  const out = Buffer.from(await res.arrayBuffer());
  check(res.status === 200, `status ${res.status}: ${out}`);
  check(res.headers.get('content-type') === 'application/octet-stream', `content-type ${res.headers.get('content-type')}`);
  check(res.headers.get('access-control-allow-origin') === '*', `allow-origin ${res.headers.get('access-control-allow-origin')}`);
  check(out.equals(f64s(58, 64, 139, 154)), `product bytes: ${out.toString('hex')}`);

  // The preflight a browser sends before that POST from another origin.
  const pre = await fetch(`${w.url}/multiply`, {
    method: 'OPTIONS',
    headers: {
      Origin: 'http://example.test',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'content-type',
    },
  });
  check(pre.status >= 200 && pre.status < 300, `preflight status ${pre.status}`);
  check(pre.headers.get('access-control-allow-origin') === '*', `preflight allow-origin ${pre.headers.get('access-control-allow-origin')}`);
  const allowed = (pre.headers.get('access-control-allow-headers') ?? '').toLowerCase();
  check(allowed === '*' || allowed.includes('content-type'), `preflight allow-headers: ${allowed}`);

  // A body one value short: the guest's own message, as a JSON error.
  const bad = await fetch(`${w.url}/multiply`, { method: 'POST', body: body.subarray(0, body.length - 8) });
  const text = await bad.text();
  check(bad.status >= 400 && bad.status < 600, `bad input status ${bad.status}`);
  let error;
  try {
    error = JSON.parse(text).error;
  } catch {
    throw new Error(`the error is not JSON: ${text}`);
  }
  check(error?.code === 'guest_error', `error code: ${text}`);
  check(error.message.includes('needs 12 + 8*(2*3 + 3*2) = 108 bytes of input, got 100'), `error message: ${text}`);
});
