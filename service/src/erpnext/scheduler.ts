// The periodic reconcile inside the API process (ERPNEXT_SYNC_INTERVAL): a run shortly after the server starts,
// then one every interval, measured from the end of the previous run so runs never pile up. A run refused because
// another sync holds the lock (an `ops sync`) is skipped quietly; a failed one is logged and tried again at the
// next tick. Stopping aborts a run in progress at its next step and waits for it.
import type { Log } from '../log.js';
import { SyncBusyError, type SyncSummary } from './sync.js';

export class SyncScheduler {
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private controller?: AbortController;
  private stopped = false;

  constructor(
    private readonly run: (signal: AbortSignal) => Promise<SyncSummary>,
    private readonly log: Log,
    private readonly intervalMs: number,
    private readonly firstDelayMs = Math.min(intervalMs, 10_000),
  ) {}

  start(): void {
    if (this.stopped || this.timer || this.running) return;
    this.schedule(this.firstDelayMs);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    this.controller?.abort(new Error('the service is shutting down'));
    await this.running;
  }

  private schedule(delayMs: number): void {
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.running = this.tick().finally(() => {
        this.running = undefined;
        if (!this.stopped) this.schedule(this.intervalMs);
      });
    }, delayMs);
    this.timer.unref();
  }

  private async tick(): Promise<void> {
    this.controller = new AbortController();
    try {
      const summary = await this.run(this.controller.signal);
      this.log.info(`ERPNext sync done: ${JSON.stringify(summary)}`);
    } catch (error) {
      if (this.controller.signal.aborted) return;
      if (error instanceof SyncBusyError) this.log.info(`ERPNext sync skipped: ${error.message}.`);
      else
        this.log.warn(`ERPNext sync failed: ${(error as Error).message}. Next attempt in ${this.intervalMs / 1000} s.`);
    }
  }
}
