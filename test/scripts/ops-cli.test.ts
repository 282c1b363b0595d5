// The ops command as an operator runs it: a separate process (node + tsx, as `npm run ops` does) on the
// embedded store of an API that ingested real images. Checks exit codes, the one-line JSON summary on
// stdout, one-line failure messages, the lock, and the wiring of every subcommand that needs no network.
// (ebs-snapshot and migrate's EC2 check would reach AWS or the metadata service, so they are only
// exercised through their functions, with mocks: see ebs-snapshot.test.ts and migrate.test.ts.)
import { spawn } from 'node:child_process';
import { hostname } from 'node:os';
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import Database from 'better-sqlite3';
import { databaseFile, openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import { startTestApp, type TestApp } from '../support/app.js';
import { writeTestModel } from '../support/onnx-model.js';
import { ingest, picture } from './helpers.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');

let t: TestApp;
let env: NodeJS.ProcessEnv;
let newModel: string;

beforeAll(async () => {
  t = await startTestApp();
  for (let i = 1; i <= 4; i++) await ingest(t, `SKU-${i}`, await picture(i));
  newModel = writeTestModel({ dir: path.join(t.dir, 'models'), name: 'bigger_model', dim: 128, seed: 9 }).onnxPath;
  // The API stops: the commands below open the database themselves.
  await t.app.close();
  await t.store.close();
  // Only what the command needs; nothing that would point it at a Qdrant or at AWS.
  env = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    NODE_OPTIONS: '',
    DATA_DIR: t.config.dataDir,
    MODEL_PATH: t.config.modelPath,
    BACKUP_DIR: path.join(t.dir, 'backups'),
    ONNXRUNTIME_NODE_INSTALL: 'skip',
  };
});
afterAll(() => t.close());

function ops(
  args: string[],
  extraEnv: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/ops.ts', ...args], {
      cwd: root,
      env: { ...env, ...extraEnv },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk) => (stdout += chunk));
    child.stderr.on('data', (chunk) => (stderr += chunk));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** stdout must be exactly one JSON line. */
function summaryOf(stdout: string): Record<string, unknown> {
  const lines = stdout.split('\n').filter(Boolean);
  expect(lines).toHaveLength(1);
  return JSON.parse(lines[0]) as Record<string, unknown>;
}

describe('npm run ops', () => {
  it('backup: exit 0, progress on stderr, the JSON summary on stdout', async () => {
    const { code, stdout, stderr } = await ops(['backup']);
    expect(code, stderr).toBe(0);
    expect(summaryOf(stdout)).toMatchObject({
      what: 'backup',
      store: 'embedded',
      points: 4,
      images: 4,
      kept: 1,
      deleted: 0,
      size: expect.any(Number),
      duration: expect.any(Number),
    });
    expect(stderr).toMatch(/^images: 4\/4 \(100%\), done in \d+s$/m);
  });

  it('check: exit 0 and a summary when consistent', async () => {
    const { code, stdout, stderr } = await ops(['check', '--verify-hashes']);
    expect(code, stderr).toBe(0);
    expect(summaryOf(stdout)).toMatchObject({ what: 'check', points: 4, files: 4, ok: true });
    expect(stderr).toContain('items_test_model_64 (items) is consistent: 4 points, 4 files');
  });

  it('duplicates: a table on stdout before the summary, or the pairs in the summary with --json', async () => {
    const table = await ops(['duplicates']);
    expect(table.code, table.stderr).toBe(0);
    const [first, last] = [table.stdout.split('\n')[0], table.stdout.trim().split('\n').at(-1)!];
    expect(first).toBe('No two items share a picture.');
    expect(JSON.parse(last)).toMatchObject({ what: 'duplicates', images: 4, pairs: 0, items: 0 });
    const json = await ops(['duplicates', '--json']);
    expect(json.code, json.stderr).toBe(0);
    expect(summaryOf(json.stdout)).toMatchObject({ what: 'duplicates', pairs: 0, duplicates: [] });
  });

  it('check --repair recomputes item centroids that were lost', async () => {
    const db = new Database(databaseFile(t.config.dataDir));
    db.prepare('DELETE FROM item_kinds').run();
    db.close();
    const { code, stdout, stderr } = await ops(['check', '--repair']);
    expect(code, stderr).toBe(0);
    expect(summaryOf(stdout)).toMatchObject({ what: 'check', ok: true, repaired: { centroids: 4, removedFiles: 0 } });
    const store = openEmbeddedStore({ dataDir: t.config.dataDir });
    try {
      const centroids = await store.collection('items').centroidsOf(['SKU-1', 'SKU-2', 'SKU-3', 'SKU-4']);
      expect(centroids.map((c) => [c.item_id, c.kind, c.count]).sort()).toEqual([
        ['SKU-1', 'catalog', 1],
        ['SKU-2', 'catalog', 1],
        ['SKU-3', 'catalog', 1],
        ['SKU-4', 'catalog', 1],
      ]);
    } finally {
      await store.close();
    }
  });

  it('restore refuses with one line while something has the database open, and works when it is closed', async () => {
    const holder = openEmbeddedStore({ dataDir: t.config.dataDir });
    try {
      const refused = await ops(['restore']);
      expect(refused.code).toBe(1);
      expect(refused.stdout).toBe('');
      expect(refused.stderr.trim().split('\n').at(-1)).toMatch(
        /^ops restore failed: the embedded database .*store\.sqlite is in use .*stop the API first/,
      );
    } finally {
      await holder.close();
    }
    const { code, stdout, stderr } = await ops(['restore']);
    expect(code, stderr).toBe(0);
    expect(summaryOf(stdout)).toMatchObject({ what: 'restore', check: { points: 4, ok: true } });
  });

  it('migrate and rollback through the CLI', async () => {
    const migrated = await ops([
      'migrate',
      '--to-model',
      newModel,
      '--skip-ebs-snapshot',
      '--settle-ms',
      '1000',
      '--batch-size',
      '2',
    ]);
    expect(migrated.code, migrated.stderr).toBe(0);
    expect(summaryOf(migrated.stdout)).toMatchObject({
      what: 'migrate',
      from: 'items_test_model_64',
      to: 'items_bigger_model_128',
      points: 4,
    });
    const rolledBack = await ops(['migrate', '--rollback', '--settle-ms', '1000']);
    expect(rolledBack.code, rolledBack.stderr).toBe(0);
    expect(summaryOf(rolledBack.stdout)).toMatchObject({ what: 'rollback', to: 'items_test_model_64', points: 4 });
  });

  it('usage mistakes exit 2 with the reason and a pointer to --help', async () => {
    for (const [args, message] of [
      [['backup', '--keep', '0'], '--keep must be an integer between 1 and 1000 (got "0")'],
      [['backup', '--kept', '3'], "Unknown option '--kept'"],
      [['migrate'], 'give exactly one of --to-model PATH, --rollback or --drop-old'],
    ] as const) {
      const { code, stdout, stderr } = await ops([...args]);
      expect(code).toBe(2);
      expect(stdout).toBe('');
      expect(stderr).toBe(`ops ${args[0]}: ${message}\nRun "npm run ops -- ${args[0]} --help" for the options.\n`);
    }
    const unknown = await ops(['frobnicate']);
    expect(unknown).toMatchObject({
      code: 2,
      stderr:
        'ops: unknown command "frobnicate"; commands: backup, restore, check, duplicates, migrate, ebs-snapshot, ' +
        'sync\n',
    });
    const help = await ops(['ebs-snapshot', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--volume-id VOL[\s\S]*--wait[\s\S]*--keep N/);
  });

  it('a bad configuration fails in one line', async () => {
    const { code, stderr } = await ops(['check'], { BACKUP_KEEP: 'many' });
    expect(code).toBe(1);
    expect(stderr).toBe(
      'ops check failed: Invalid configuration: BACKUP_KEEP="many" is not an integer between 1 and 1000.\n',
    );
  });

  it('one command at a time: a live lock refuses, a stale one is taken over', async () => {
    const lock = path.join(t.dir, 'backups', '.ops.lock');
    mkdirSync(path.dirname(lock), { recursive: true });
    writeFileSync(
      lock,
      JSON.stringify({ pid: process.pid, host: hostname(), command: 'migrate', since: '2026-03-14T02:00:00.000Z' }),
    );
    const refused = await ops(['backup']);
    expect(refused.code).toBe(1);
    expect(refused.stderr).toContain(
      `ops backup failed: another operations command (migrate, pid ${process.pid} on ${hostname()}, since ` +
        `2026-03-14T02:00:00.000Z) holds ${lock}`,
    );
    writeFileSync(
      lock,
      JSON.stringify({ pid: 2 ** 22 + 12345, host: hostname(), command: 'backup', since: '2026-03-14T02:00:00.000Z' }),
    );
    const { code, stderr } = await ops(['backup']);
    expect(code, stderr).toBe(0);
  });
});
