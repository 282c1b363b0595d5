// The scheduled sync inside the API (ERPNEXT_SYNC_INTERVAL): started when the server listens, runs again every
// interval, skips a tick while another sync holds the lock, logs failures and carries on, and stops on close
// without leaving a run behind.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { SyncScheduler } from '../../../service/src/erpnext/scheduler.js';
import { SyncBusyError, type SyncSummary } from '../../../service/src/erpnext/sync.js';
import type { TestApp } from '../../support/app.js';
import { seedCatalog, seedItem, startWithErpNext, SYNC_ZERO } from '../../support/erpnext-seed.js';
import type { FrappeDouble } from '../../support/frappe-double.js';

const SUMMARY: SyncSummary = { ...SYNC_ZERO, duration_s: 0 };

describe('SyncScheduler', () => {
  it('runs after the first delay and then every interval, skipping busy ticks and logging failures', async () => {
    const lines: string[] = [];
    const outcomes = [
      () => Promise.resolve(SUMMARY),
      () => Promise.reject(new SyncBusyError('another ERPNext sync is running (ops sync)')),
      () => Promise.reject(new Error('ERPNext at erp answered HTTP 503')),
      () => Promise.resolve({ ...SUMMARY, items_added: 2 }),
    ];
    let runs = 0;
    const scheduler = new SyncScheduler(
      () => outcomes[Math.min(runs++, outcomes.length - 1)](),
      { info: (m) => lines.push(`info ${m}`), warn: (m) => lines.push(`warn ${m}`) },
      40,
      10,
    );
    scheduler.start();
    await vi.waitFor(() => expect(runs).toBeGreaterThanOrEqual(4), { timeout: 3000 });
    await scheduler.stop();
    const stoppedAt = runs;
    await new Promise((resolve) => setTimeout(resolve, 150));
    expect(runs).toBe(stoppedAt);
    expect(lines.slice(0, 4)).toEqual([
      `info ERPNext sync done: ${JSON.stringify(SUMMARY)}`,
      'info ERPNext sync skipped: another ERPNext sync is running (ops sync).',
      'warn ERPNext sync failed: ERPNext at erp answered HTTP 503. Next attempt in 0.04 s.',
      `info ERPNext sync done: ${JSON.stringify({ ...SUMMARY, items_added: 2 })}`,
    ]);
  });

  it('aborts a run in progress when stopped, and waits for it', async () => {
    let sawAbort = false;
    const scheduler = new SyncScheduler(
      (signal) =>
        new Promise<SyncSummary>((_resolve, reject) =>
          signal.addEventListener('abort', () => {
            sawAbort = true;
            reject(signal.reason as Error);
          }),
        ),
      { info: () => {}, warn: () => {} },
      1000,
      0,
    );
    scheduler.start();
    await new Promise((resolve) => setTimeout(resolve, 30));
    await scheduler.stop();
    expect(sawAbort).toBe(true);
  });
});

describe('ERPNEXT_SYNC_INTERVAL in the API', () => {
  let double: FrappeDouble;
  let t: TestApp;
  afterEach(async () => {
    await t?.close();
    await double?.close();
    double?.assertNoViolations();
  });

  it('syncs once the server listens, again every interval, and not after close', async () => {
    ({ double, t } = await startWithErpNext({
      env: { ERPNEXT_SYNC_INTERVAL: '1s' },
      erpnext: { firstSyncDelayMs: 0 },
    }));
    await seedCatalog(double, 5);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(double.requests).toEqual([]); // not listening yet: no sync
    await t.app.listen({ port: 0, host: '127.0.0.1' });
    await vi.waitFor(async () => expect((await t.catalog.item('ITEM-0005')).length).toBe(1), { timeout: 10_000 });
    await seedItem(double, 'LATER', 2);
    await vi.waitFor(async () => expect((await t.catalog.item('LATER')).length).toBe(2), { timeout: 10_000 });
    await t.app.close();
    const seen = double.requests.length;
    await new Promise((resolve) => setTimeout(resolve, 1500));
    expect(double.requests.length).toBe(seen);
  });
});
