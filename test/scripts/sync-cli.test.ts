// `npm run ops -- sync` as an operator runs it: its own process (node + tsx), against the Frappe double over
// loopback, beside a running API on the same data directory. The double's request log shows what the process
// downloaded; the store and the consistency check show what it wrote. It is killed with SIGKILL mid-run and run
// again; a second sync started meanwhile is refused; SIGTERM interrupts it cleanly.
import { spawn, type ChildProcess } from 'node:child_process';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import { erpNextSync, logReporter } from '../../service/src/erpnext/connector.js';
import { checkConsistency } from '../../scripts/consistency.js';
import { multipart, type TestApp } from '../support/app.js';
import {
  catalogImages,
  fileDownloads,
  seedCatalog,
  seedItem,
  startWithErpNext,
  SYNC_ZERO,
  type SeededItem,
} from '../support/erpnext-seed.js';
import { FrappeDouble, type ApiUser } from '../support/frappe-double.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const WEBHOOK_SECRET = 'cli-webhook-secret-0123456789';

let double: FrappeDouble;
let reader: ApiUser;
let t: TestApp;
const children: ChildProcess[] = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  await t?.close();
  await double?.close();
  double?.assertNoViolations();
});

/** The API on a temp data directory, listening on loopback, with the ERPNext connector (no scheduled runs). */
async function start() {
  ({ double, reader, t } = await startWithErpNext({ env: { ERPNEXT_WEBHOOK_SECRET: WEBHOOK_SECRET } }));
  await t.app.listen({ port: 0, host: '127.0.0.1' });
}

interface Run {
  child: ChildProcess;
  done: Promise<{ code: number | null; signal: NodeJS.Signals | null; stdout: string; stderr: string }>;
}

function ops(args: string[], extraEnv: Record<string, string> = {}): Run {
  const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/ops.ts', ...args], {
    cwd: root,
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      NODE_OPTIONS: '',
      DATA_DIR: t.config.dataDir,
      MODEL_PATH: t.config.modelPath,
      ERPNEXT_URL: double.url,
      ERPNEXT_API_KEY: reader.key,
      ERPNEXT_API_SECRET: reader.secret,
      ...extraEnv,
    },
  });
  children.push(child);
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk) => (stdout += chunk));
  child.stderr.on('data', (chunk) => (stderr += chunk));
  const done = new Promise<Awaited<Run['done']>>((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  return { child, done };
}

/** The last stdout line: the JSON summary. */
function summaryOf(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines.at(-1)!) as Record<string, unknown>;
}

const SUMMARY_KEYS = [
  'duration_s',
  'failed',
  'images_added',
  'images_removed',
  'items_added',
  'items_removed',
  'items_updated',
];
const downloads = () => fileDownloads(double);

const catalogNow = () => catalogImages(t.catalog);

async function expectMirrorsAndConsistent(seeded: SeededItem[]) {
  const held = await catalogNow();
  expect(held.size).toBe(seeded.length);
  for (const item of seeded) {
    const refs = (held.get(item.name) ?? []).map((image) => image.source_ref);
    expect(refs.sort(), item.name).toEqual([...item.urls].sort());
  }
  const report = await checkConsistency({
    store: t.store,
    files: new ImageFiles(t.config.imageStorageDir),
    alias: t.config.collection,
    reporter: { info: () => {}, warn: () => {}, summary: () => {}, progress: () => ({ advance() {}, done() {} }) },
  });
  expect(report).toMatchObject({ ok: true, pointsWithoutFile: [], filesWithoutPoint: [] });
}

describe('npm run ops -- sync', () => {
  it('brings a 200-item catalog in beside the running API; a re-run reports zeros; webhooks take over', async () => {
    await start();
    const seeded = await seedCatalog(double, 200);

    const first = await ops(['sync']).done;
    expect(first.code, first.stderr).toBe(0);
    const summary = summaryOf(first.stdout);
    expect(Object.keys(summary).sort()).toEqual(SUMMARY_KEYS);
    expect(summary).toMatchObject({ ...SYNC_ZERO, items_added: 200, images_added: 500 });
    expect(first.stderr).toMatch(/ERPNext sync \(127\.0\.0\.1:\d+\): full run/);
    expect(first.stderr).toMatch(/^items: \d+\/200 \(\d+%\)/m); // plain progress lines off a terminal
    expect(first.stderr).not.toContain(reader.secret);
    await expectMirrorsAndConsistent(seeded);

    // The running API searches what the other process stored.
    const probe = await multipart({}, { bytes: seeded[99].pictures[0] });
    const found = await t.app.inject({ method: 'POST', url: '/search', ...probe });
    expect(found.json().results[0].item_id).toBe('ITEM-0100');

    const downloaded = downloads();
    const second = await ops(['sync']).done;
    expect(second.code, second.stderr).toBe(0);
    expect(summaryOf(second.stdout)).toMatchObject(SYNC_ZERO);
    expect(downloads()).toBe(downloaded); // nothing downloaded, so nothing embedded
    expect(second.stderr).toMatch(/Items changed since \d{4}-\d{2}-\d{2} /);

    // A signed webhook for a new Item makes it searchable within seconds; an unsigned one changes nothing.
    const created = await seedItem(double, 'FRESH-1', 2);
    const port = (t.app.server.address() as AddressInfo).port;
    const hook = `http://127.0.0.1:${port}/webhooks/erpnext`;
    await seedItem(double, 'UNSIGNED-1', 1);
    expect((await double.sendWebhook({ url: hook, data: { name: 'UNSIGNED-1' } })).status).toBe(401);
    const sent = performance.now();
    expect((await double.sendWebhook({ url: hook, data: { name: 'FRESH-1' }, secret: WEBHOOK_SECRET })).status).toBe(
      202,
    );
    await vi.waitFor(
      async () => {
        const search = await t.app.inject({
          method: 'POST',
          url: '/search',
          ...(await multipart({}, { bytes: created.pictures[1] })),
        });
        expect(search.json().results[0]?.item_id).toBe('FRESH-1');
      },
      { timeout: 5000, interval: 50 },
    );
    expect(performance.now() - sent).toBeLessThan(5000);
    await expect(t.catalog.item('UNSIGNED-1')).rejects.toMatchObject({ code: 'item_not_found' });
  });

  it('killed with SIGKILL mid-run and run again: everything in once, no duplicate, no orphan', async () => {
    await start();
    const seeded = await seedCatalog(double, 80);
    const total = seeded.reduce((sum, item) => sum + item.urls.length, 0);
    const run = ops(['sync']);
    let files = 0;
    double.beforeRequest(({ path }) => {
      if (/^\/(private\/)?files\//.test(path) && ++files === 100) run.child.kill('SIGKILL');
    });
    const killed = await run.done;
    expect(killed.signal).toBe('SIGKILL');
    const before = [...(await catalogNow()).values()].reduce((sum, images) => sum + images.length, 0);
    expect(before).toBeGreaterThan(0);
    expect(before).toBeLessThan(total);

    const again = await ops(['sync']).done;
    expect(again.code, again.stderr).toBe(0);
    const summary = summaryOf(again.stdout);
    expect(summary.failed).toBe(0);
    expect(Number(summary.images_added) + before).toBe(total);
    await expectMirrorsAndConsistent(seeded);
    expect(summaryOf((await ops(['sync']).done).stdout)).toMatchObject(SYNC_ZERO);
  });

  it('refuses a second sync while one runs, and stops cleanly on SIGTERM', async () => {
    await start();
    await seedCatalog(double, 6);
    double.injectFault({ kind: 'hang' }, { times: 1, path: '/files/' }); // holds the first run
    const first = ops(['sync']);
    await vi.waitFor(() => expect(double.requests.some((r) => r.status === 'hang')).toBe(true), { timeout: 20_000 });

    const second = await ops(['sync']).done;
    expect(second.code).toBe(1);
    expect(second.stdout).toBe('');
    expect(second.stderr.trim().split('\n').at(-1)).toMatch(
      new RegExp(`^ops sync failed: another ERPNext sync is running \\(ops sync, pid ${first.child.pid} on `),
    );
    // The API process's own sync is refused the same way.
    const inApi = erpNextSync(t.config, t.catalog, { info: () => {}, warn: () => {} });
    try {
      await expect(inApi.run({ reporter: logReporter({ info: () => {}, warn: () => {} }) })).rejects.toThrow(
        /another ERPNext sync is running \(ops sync, pid \d+/,
      );
    } finally {
      inApi.close();
    }

    first.child.kill('SIGTERM');
    const stopped = await first.done;
    expect(stopped.code).toBe(1);
    expect(stopped.stderr.trim().split('\n').at(-1)).toBe(
      'ops sync failed: interrupted; what is done is kept: run the same command again to continue',
    );
    const resumed = await ops(['sync']).done;
    expect(resumed.code, resumed.stderr).toBe(0);
    expect((await catalogNow()).size).toBe(6);
  });

  it('--dry-run prints what would change and changes nothing; without ERPNEXT_URL it says what to set', async () => {
    await start();
    await seedCatalog(double, 4);
    const dry = await ops(['sync', '--dry-run']).done;
    expect(dry.code, dry.stderr).toBe(0);
    expect(dry.stderr).toContain('dry run: nothing is changed');
    expect(dry.stderr.match(/^would add item "ITEM-000\d" with \d image\(s\)$/gm)).toHaveLength(4);
    expect(summaryOf(dry.stdout)).toMatchObject({ ...SYNC_ZERO, items_added: 4, images_added: 10 });
    expect(downloads()).toBe(0);
    expect((await catalogNow()).size).toBe(0);

    // Unset, or ERPNEXT_URL alone (which only links the staff page to ERPNext): it says what to set.
    for (const url of ['', double.url]) {
      const unset = await ops(['sync'], { ERPNEXT_URL: url, ERPNEXT_API_KEY: '', ERPNEXT_API_SECRET: '' }).done;
      expect(unset.code).toBe(1);
      expect(unset.stderr.trim()).toBe(
        'ops sync failed: the ERPNext sync is not configured: set ERPNEXT_URL, ERPNEXT_API_KEY and ' +
          'ERPNEXT_API_SECRET (see the README, section ERPNext)',
      );
    }
  });
});
