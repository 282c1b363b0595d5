// ERPNext's webhooks, after the route has checked the signature: the body only names an Item, and is taken as a
// hint. Frappe gives up on a webhook after 5 s and retries it, so the route answers 202 at once and the work
// happens here, in the background: the Item is read afresh from ERPNext and reconciled (sync.ts reconcileOne).
// - In order per item, idempotent: one job per item at a time; a name that arrives while its job runs is run
//   once more afterwards (it may describe a newer change), and names waiting to start are merged. Replays and
//   bursts therefore cost one reconcile per item, and the last one always reads ERPNext's latest state.
// - Bounded: at most MAX_WAITING names wait; beyond that a name is dropped with a warning, and the next
//   scheduled sync (ERPNEXT_SYNC_INTERVAL) picks the change up, as it does for a job that fails.
import type { Log } from '../log.js';

/** Frappe's document names are at most 140 characters (varchar(140)). */
const MAX_NAME = 140;
const MAX_WAITING = 10_000;

const TEMPLATE = 'set the webhook\'s JSON request body to {"name": "{{ doc.name }}"}';

/** The Item name a webhook body carries, or an Error that says how the Webhook must be set up. */
export function itemNameOf(body: Buffer): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    throw new Error(`The webhook body is not JSON; ${TEMPLATE}.`);
  }
  const name = typeof parsed === 'object' && parsed !== null ? (parsed as { name?: unknown }).name : undefined;
  if (typeof name !== 'string' || name.trim() === '' || name.length > MAX_NAME) {
    throw new Error(`The webhook body has no Item "name" (1-${MAX_NAME} characters); ${TEMPLATE}.`);
  }
  return name;
}

export type Enqueued = 'queued' | 'merged' | 'dropped';

/** Runs `work(name)` in the background, one job per name at a time, `concurrency` names at once. */
export class ItemQueue {
  private readonly waiting = new Set<string>();
  private readonly running = new Set<string>();
  /** Names pushed while their job was running: run again after it. */
  private readonly again = new Set<string>();
  private readonly idleWaiters: Array<() => void> = [];
  private readonly controller = new AbortController();
  private closed = false;

  constructor(
    private readonly work: (name: string, signal: AbortSignal) => Promise<void>,
    private readonly log: Log,
    private readonly concurrency = 2,
  ) {}

  push(name: string): Enqueued {
    if (this.closed) return 'dropped';
    if (this.running.has(name)) {
      this.again.add(name);
      return 'merged';
    }
    if (this.waiting.has(name)) return 'merged';
    if (this.waiting.size >= MAX_WAITING) {
      this.log.warn(
        `ERPNext webhook for Item ${JSON.stringify(name)} dropped: ${MAX_WAITING} are waiting already; the next ` +
          'scheduled sync picks the change up.',
      );
      return 'dropped';
    }
    this.waiting.add(name);
    this.startMore();
    return 'queued';
  }

  /** Resolves when nothing waits or runs. */
  idle(): Promise<void> {
    if (this.waiting.size === 0 && this.running.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Takes no more names, aborts the jobs running, and waits for them to end. */
  async close(): Promise<void> {
    this.closed = true;
    this.waiting.clear();
    this.again.clear();
    this.controller.abort(new Error('the service is shutting down'));
    await this.idle();
  }

  private startMore(): void {
    for (const name of this.waiting) {
      if (this.running.size >= this.concurrency) return;
      this.waiting.delete(name);
      this.running.add(name);
      void this.runJob(name);
    }
  }

  private async runJob(name: string): Promise<void> {
    try {
      await this.work(name, this.controller.signal);
    } catch (error) {
      if (!this.controller.signal.aborted) {
        this.log.warn(
          `ERPNext webhook for Item ${JSON.stringify(name)} could not be applied now (${(error as Error).message}); ` +
            'the next scheduled sync picks the change up.',
        );
      }
    } finally {
      this.running.delete(name);
      if (this.again.delete(name) && !this.closed) this.waiting.add(name);
      this.startMore();
      if (this.waiting.size === 0 && this.running.size === 0) {
        for (const resolve of this.idleWaiters.splice(0)) resolve();
      }
    }
  }
}
