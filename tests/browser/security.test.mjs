// The dashboard against hostile text (issue 15, item 5; SECURITY.md): actor
// ids and guest output that are HTML and script are shown as text, nothing
// of them runs, and the page's Content-Security-Policy stops inline script
// even if some markup did get in. (Module names cannot hold markup: the
// store's naming rules refuse `<`, `>`, quotes and spaces, which
// crates/wasmhost-server/tests/it/security.rs checks.)
//
//   node security.test.mjs   (with the environment scripts/browser-tests.sh sets)

import fs from 'node:fs';
import path from 'node:path';
import { GUESTS, check, eventually, launch, openPage, screenshot, startServer, test } from './lib.mjs';

/** Markup that runs script if it is ever parsed as HTML, each setting window.__pwned. */
const PAYLOADS = [
  '<img src=x onerror="window.__pwned=1">',
  '<script>window.__pwned=2</script>',
  '<svg onload="window.__pwned=3"></svg>',
  '"><img src=x onerror=window.__pwned=4>',
  "'><iframe srcdoc=\"<script>parent.__pwned=5</script>\"></iframe>",
];

/** No payload ran: no flag, no dialog, no injected element. */
async function nothingRan(page, dialogs, where) {
  const pwned = await page.evaluate(() => window.__pwned);
  check(pwned === undefined, `${where}: a payload ran (window.__pwned = ${pwned})`);
  check(dialogs.length === 0, `${where}: a dialog opened: ${dialogs}`);
  const injected = await page.$$eval('img[src="x"], svg[onload], iframe[srcdoc], script:not([src])', (n) => n.length);
  check(injected === 0, `${where}: ${injected} injected element(s) in the page`);
}

test('dashboard: actor ids and guest output are text, and the CSP holds', async () => {
  const server = await startServer(['--trap-unknown-imports']);
  const api = (method, p, body) => fetch(`${server.url}${p}`, { method, body });

  // A module whose actors count, and a plugin that echoes its input.
  const wat = fs.readFileSync(path.join(GUESTS, 'numeric.wat'));
  let res = await api('POST', '/api/v1/modules?name=numeric&tag=v1', wat);
  check(res.status === 201, `upload numeric: ${res.status} ${await res.text()}`);
  const plugin = fs.readFileSync(path.join(GUESTS, 'extism-plugin.wasm'));
  res = await api('POST', '/api/v1/modules?name=plugin&tag=v1', plugin);
  check(res.status === 201, `upload plugin: ${res.status} ${await res.text()}`);

  // Module names cannot carry markup at all.
  res = await api('POST', `/api/v1/modules?name=${encodeURIComponent(PAYLOADS[0])}`, wat);
  check(res.status === 400, `a name with markup is refused: ${res.status}`);

  // Actors whose ids are the payloads.
  for (const id of PAYLOADS) {
    res = await api('POST', `/api/v1/actors/${encodeURIComponent(id)}?module=numeric:v1&function=counter`, '');
    check(res.ok, `actor ${id}: ${res.status} ${await res.text()}`);
  }

  const browser = await launch();
  const page = await openPage(browser, null);
  const dialogs = [];
  page.on('dialog', async (d) => {
    dialogs.push(d.message());
    await d.dismiss();
  });
  const violations = [];
  await page.exposeFunction('__cspViolation', (v) => violations.push(v));
  await page.addInitScript(() => {
    document.addEventListener('securitypolicyviolation', (e) => window.__cspViolation(`${e.violatedDirective} ${e.blockedURI}`));
  });
  const loaded = await page.goto(`${server.url}/`);
  const csp = loaded.headers()['content-security-policy'] ?? '';
  check(/script-src 'self'/.test(csp) && !/unsafe-inline/.test(csp), `the page's CSP: ${csp}`);
  await page.waitForSelector('body[data-ready="true"]');

  // The actors table shows each id literally.
  await eventually(async () => {
    const ids = await page.$$eval('#actors tr[data-id] td:first-child', (cells) => cells.map((c) => c.textContent));
    return PAYLOADS.every((p) => ids.some((t) => t.includes(p)));
  }, 'every actor id is listed as text');
  await nothingRan(page, dialogs, 'actors table');

  // Guest output: the plugin echoes markup, and fails with it in its message.
  await page.click('#modules li[data-ref="plugin:v1"]');
  await page.waitForFunction(() => document.querySelector('#module-title')?.textContent === 'plugin:v1');
  for (const [fn, want] of [
    ['echo', 'ok'],
    ['fail', 'error'],
  ]) {
    for (const payload of PAYLOADS) {
      await page.selectOption('#function-select', fn);
      await page.fill('#call-input', payload);
      await page.$eval('#call-output', (e) => delete e.dataset.result);
      await page.click('#call-button');
      await page.waitForSelector('#call-output[data-result="ok"], #call-output[data-result="error"]');
      const result = await page.getAttribute('#call-output', 'data-result');
      const shown = (await page.textContent('#call-output')) ?? '';
      check(result === want, `${fn}: ${result}: ${shown}`);
      check(shown.includes(payload), `${fn} shows its output as text: ${JSON.stringify(shown)} lacks ${payload}`);
      await nothingRan(page, dialogs, `${fn} ${payload}`);
    }
  }
  await screenshot(page, 'dashboard-hostile-text.png');

  // The second line of defence: markup injected into the page anyway does
  // not run, because the CSP refuses inline script.
  await page.evaluate(() => {
    const div = document.createElement('div');
    div.innerHTML = '<img src="data:," onerror="window.__pwned=99">';
    document.body.append(div);
  });
  await eventually(async () => violations.length > 0, 'the CSP reports the blocked inline handler');
  check((await page.evaluate(() => window.__pwned)) === undefined, 'the CSP blocked the injected handler');
  check(violations.some((v) => v.startsWith('script-src')), `violations: ${violations}`);
});
