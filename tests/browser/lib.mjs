// Shared helpers for the headless-Chromium tests (scripts/browser-tests.sh runs them).
//
// Each *.test.mjs file is a self-contained node script:
//
//   import { test, check, startServer, launch, openPage, screenshot } from './lib.mjs';
//   test('the page loads', async () => {
//     const server = await startServer();
//     const browser = await launch();
//     const page = await openPage(browser, `${server.url}/`);
//     check(await page.title() === 'wasmhost', 'title');
//   });
//
// Tests run one after another once the file has been read; every server and
// browser started during a test is stopped when it ends, pass or fail, and a
// failed test leaves a screenshot of each open page and the servers' output.
// The file exits non-zero when any test failed.
//
// Environment (set by scripts/browser-tests.sh):
//   WASMHOST   the wasmhost binary             GUESTS     target/guests/out
//   ARTIFACTS  where screenshots go            CHROMIUM   the Chromium executable

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

export const WASMHOST = process.env.WASMHOST ?? '';
export const GUESTS = process.env.GUESTS ?? '';
export const ARTIFACTS = process.env.ARTIFACTS ?? path.join(os.tmpdir(), 'wasmhost-browser-artifacts');
export const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';

/** How long one test may take, start to end. */
const TEST_TIMEOUT_MS = Number(process.env.TEST_TIMEOUT_MS ?? 180_000);
const HEALTHY_WITHIN_MS = 30_000;
const KILL_AFTER_MS = 5_000;

// ---------------------------------------------------------------------------
// Assertions and the runner

/** Throws (failing the test) with `message` unless `cond` is truthy. */
export function check(cond, message) {
  if (!cond) throw new Error(`check failed: ${message}`);
}

/** Waits until `fn()` returns something truthy (and returns it), or fails with `message`. */
export async function eventually(fn, message, { timeout = 15_000, every = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value;
    } catch (e) {
      last = e;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms: ${message}${last ? ` (last error: ${last.message})` : ''}`);
    }
    await sleep(every);
  }
}

const tests = [];
/** What the running test started: stopped when it ends. */
let resources = [];
/** Everything still running, for the exit handler's last resort. */
const children = new Set();

/** Registers a test; the file's tests run in order once the file is loaded. */
export function test(name, fn) {
  tests.push({ name, fn });
  if (tests.length === 1) setImmediate(runAll);
}

/** Runs `fn` when the current test ends (last registered, first run). */
export function defer(fn) {
  resources.push({ kind: 'cleanup', stop: fn });
}

async function cleanUp(failedName) {
  const list = resources.reverse();
  resources = [];
  if (failedName) {
    const base = failedName.replace(/[^a-zA-Z0-9]+/g, '-').replace(/^-|-$/g, '').toLowerCase();
    let n = 0;
    for (const r of list) {
      if (r.kind !== 'browser') continue;
      for (const context of r.browser.contexts()) {
        for (const page of context.pages()) {
          n += 1;
          const file = `FAILED-${base}-${n}.png`;
          await screenshot(page, file).then(
            () => console.log(`  screenshot of the page when it failed: ${path.join(ARTIFACTS, file)}`),
            () => {},
          );
        }
      }
    }
    for (const r of list) {
      if (r.kind !== 'server') continue;
      const out = r.server.output();
      console.log(`  --- output of ${r.server.url} (last 4 KiB) ---`);
      console.log(out.slice(-4096).replace(/^/gm, '  | '));
    }
  }
  for (const r of list) {
    try {
      await r.stop();
    } catch (e) {
      console.log(`  (cleanup: ${e.message})`);
    }
  }
}

async function runAll() {
  let passed = 0;
  let failed = 0;
  const file = path.basename(process.argv[1] ?? 'test');
  for (const { name, fn } of tests) {
    const started = Date.now();
    let timer;
    try {
      await Promise.race([
        fn(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`the test took longer than ${TEST_TIMEOUT_MS} ms`)), TEST_TIMEOUT_MS);
        }),
      ]);
      clearTimeout(timer);
      await cleanUp(null);
      passed += 1;
      console.log(`ok   ${file}: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    } catch (e) {
      clearTimeout(timer);
      failed += 1;
      console.log(`FAIL ${file}: ${name} (${((Date.now() - started) / 1000).toFixed(1)} s)`);
      console.log(`  ${(e && e.stack) || e}`.replace(/\n/g, '\n  '));
      await cleanUp(name);
    }
  }
  console.log(`${file}: ${passed} passed, ${failed} failed`);
  process.exitCode = failed ? 1 : 0;
}

// Ctrl-C or a killed runner: stop what was started before going.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    console.log(`\n${signal}: stopping servers and browsers`);
    await cleanUp(null);
    process.exit(130);
  });
}
process.on('exit', () => {
  for (const child of children) child.kill('SIGKILL');
});

// ---------------------------------------------------------------------------
// Servers

/** A TCP port free on 127.0.0.1 right now. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

function requireEnv(name, value) {
  if (!value) throw new Error(`${name} is not set (run the tests with scripts/browser-tests.sh)`);
  return value;
}

/**
 * Starts `$WASMHOST serve --addr 127.0.0.1:PORT --state TMPDIR ...args` and
 * waits (at most 30 s) until GET /healthz answers 200.
 * Returns {url, port, state, stop(), output()}; stopped when the test ends.
 */
export async function startServer(args = [], { env = {} } = {}) {
  const bin = requireEnv('WASMHOST', WASMHOST);
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await startServerOnce(bin, args, env);
    } catch (e) {
      // Another process took the port between freePort() and bind: try another.
      if (attempt < 3 && /cannot listen|address already in use/i.test(e.message)) continue;
      throw e;
    }
  }
}

async function startServerOnce(bin, args, env) {
  const port = await freePort();
  const state = fs.mkdtempSync(path.join(os.tmpdir(), 'wasmhost-browser-'));
  const argv = ['serve', '--addr', `127.0.0.1:${port}`, '--state', state, ...args];
  const child = spawn(bin, argv, {
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let exited = null;
  const exit = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = { code, signal };
      children.delete(child);
      resolve(exited);
    });
    child.on('error', (e) => {
      out += `\nspawn failed: ${e.message}`;
      exited = { code: null, signal: null, error: e };
      children.delete(child);
      resolve(exited);
    });
  });

  const url = `http://127.0.0.1:${port}`;
  const server = {
    url,
    port,
    state,
    output: () => out,
    stop: async () => {
      if (!exited) {
        child.kill('SIGTERM');
        const killed = await Promise.race([exit, sleep(KILL_AFTER_MS).then(() => null)]);
        if (!killed) {
          out += '\n(still running 5 s after SIGTERM: SIGKILL)';
          child.kill('SIGKILL');
          await exit;
        }
      }
      fs.rmSync(state, { recursive: true, force: true });
    },
  };
  resources.push({ kind: 'server', server, stop: server.stop });

  const deadline = Date.now() + HEALTHY_WITHIN_MS;
  for (;;) {
    if (exited) {
      throw new Error(`wasmhost ${argv.join(' ')} exited (${exited.code ?? exited.signal}) before it was healthy:\n${out}`);
    }
    try {
      const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
      if (res.status === 200) return server;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      throw new Error(`wasmhost serve was not healthy within ${HEALTHY_WITHIN_MS / 1000} s:\n${out}`);
    }
    await sleep(100);
  }
}

/** Runs `$WASMHOST ...args` to completion; resolves to {code, stdout, stderr}. */
export function wasmhost(args, { env = {}, input } = {}) {
  const bin = requireEnv('WASMHOST', WASMHOST);
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { env: { ...process.env, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(input ?? '');
  });
}

// ---------------------------------------------------------------------------
// Chromium

export const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** Launches headless Chromium ($CHROMIUM); closed when the test ends. */
export async function launch() {
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
  });
  resources.push({ kind: 'browser', browser, stop: () => browser.close() });
  return browser;
}

/**
 * A new page (in its own context, so storage starts empty) at `url`.
 * `page.problems` collects uncaught exceptions, console errors, failed
 * requests and HTTP errors (`HTTP 404 GET url`), which a test can check is
 * empty.
 */
export async function openPage(browser, url, { viewport = { width: 1400, height: 1000 } } = {}) {
  const context = await browser.newContext({ viewport });
  const page = await context.newPage();
  page.problems = [];
  page.on('pageerror', (e) => page.problems.push(`uncaught: ${e.message}`));
  page.on('console', (msg) => {
    // Failed requests are reported below, with their URL.
    if (msg.type() === 'error' && !msg.text().startsWith('Failed to load resource')) {
      page.problems.push(`console: ${msg.text()}`);
    }
  });
  page.on('response', (res) => {
    if (res.status() >= 400) page.problems.push(`HTTP ${res.status()} ${res.request().method()} ${res.url()}`);
  });
  page.on('requestfailed', (req) => page.problems.push(`request failed: ${req.method()} ${req.url()} ${req.failure()?.errorText}`));
  page.setDefaultTimeout(15_000);
  if (url) await page.goto(url);
  return page;
}

/** Saves a full-page screenshot as $ARTIFACTS/name; returns its path. */
export async function screenshot(page, name) {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const file = path.join(ARTIFACTS, name);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/** A scratch directory removed when the test ends. */
export function tempDir(prefix = 'wasmhost-browser-test-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  defer(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}
