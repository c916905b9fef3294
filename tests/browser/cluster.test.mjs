// The dashboard of a node in a cluster (issue 13): the Cluster panel lists
// every node (this one marked) with its address, version and load, and
// drops a node that stopped; a node serving alone shows no Cluster panel.
// A real nats-server with JetStream (Debian's, installed by
// scripts/test-services.sh) on a free loopback port.
//
//   node cluster.test.mjs   (with the environment scripts/browser-tests.sh sets)

import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import { check, defer, eventually, freePort, launch, openPage, screenshot, startServer, tempDir, test } from './lib.mjs';

const NATS = process.env.WASMHOST_TEST_NATS_SERVER ?? '/usr/sbin/nats-server';

/** nats-server -js on a free port with a temporary store; stopped at the end of the test. */
async function startNats() {
  check(fs.existsSync(NATS), `${NATS} is missing: run scripts/test-services.sh`);
  const port = await freePort();
  const dir = tempDir('wasmhost-nats-');
  const child = spawn(NATS, ['-js', '-sd', dir, '-a', '127.0.0.1', '-p', String(port)], { stdio: 'ignore' });
  defer(() => child.kill('SIGKILL'));
  await eventually(
    () =>
      new Promise((resolve, reject) => {
        const s = net.connect(port, '127.0.0.1', () => {
          s.end();
          resolve(true);
        });
        s.on('error', reject);
      }),
    'nats-server listens',
  );
  return `nats://127.0.0.1:${port}`;
}

test('dashboard: the Cluster panel lists the nodes and drops one that stopped', async () => {
  const url = await startNats();
  const args = ['--cluster', url, '--cluster-name', 'browser', '--cluster-heartbeat', '300ms'];
  const a = await startServer(args);
  const b = await startServer(args);
  const browser = await launch();
  const page = await openPage(browser, a.url);
  await page.waitForSelector('[data-testid="cluster"]:not([hidden])');
  await eventually(async () => (await page.$$('[data-testid="cluster-node"]')).length === 2, 'two nodes listed');
  const rows = await page.$$eval('[data-testid="cluster-node"]', (trs) => trs.map((tr) => tr.innerText));
  check(rows.some((r) => r.includes('(this node)') && r.includes(a.url)), `a is marked as this node: ${rows}`);
  check(rows.some((r) => r.includes(b.url) && !r.includes('(this node)')), `b is listed: ${rows}`);
  const count = await page.textContent('[data-testid="cluster-count"]');
  check(count.includes('browser') && count.includes('2 nodes'), `count: ${count}`);
  await screenshot(page, 'dashboard-cluster.png');

  // b stops: it leaves the list.
  await b.stop();
  await eventually(async () => (await page.$$('[data-testid="cluster-node"]')).length === 1, 'b dropped', {
    timeout: 20_000,
  });
});

test('dashboard: a node serving alone has no Cluster panel', async () => {
  const alone = await startServer([]);
  const browser = await launch();
  const page = await openPage(browser, alone.url);
  await page.waitForSelector('[data-testid="actors"]');
  // The page has fetched /api/v1/cluster once the actors have loaded.
  await eventually(async () => (await page.textContent('[data-testid="actors-count"]')).length > 0, 'actors loaded');
  check(await page.$eval('[data-testid="cluster"]', (s) => s.hidden), 'the Cluster panel is hidden');
});
