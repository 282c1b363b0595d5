// Bounds the work in flight: at most `concurrency` jobs run, at most `queueMax` wait, the rest are
// refused at once (503 + Retry-After) so a burst of uploads cannot exhaust memory.
import { retryLater } from '../errors.js';

/** Where embedding timings go (the /metrics registry); seconds. Optional: nothing is measured without it. */
export interface EmbeddingObserver {
  waited(seconds: number): void;
  decoded(seconds: number): void;
  inferred(seconds: number, batch: number): void;
}

/** The answer when no embedding slot is free and the queue is full. */
export const embeddingBusy = () =>
  retryLater('busy', 'The server is busy embedding other images. Retry in a moment.', 1);

export class WorkQueue {
  private active = 0;
  private readonly waiting: Array<() => void> = [];
  observer?: EmbeddingObserver;

  constructor(
    private readonly concurrency: number,
    private readonly queueMax: number,
  ) {}

  get pending(): number {
    return this.active + this.waiting.length;
  }

  /** True when a new job would be refused right now (every slot busy, the queue full). */
  get full(): boolean {
    return this.active >= this.concurrency && this.waiting.length >= this.queueMax;
  }

  /** Jobs waiting for a slot (not yet running). */
  get queued(): number {
    return this.waiting.length;
  }

  /** Runs `job` only if a slot is free right now (optional extra work that must never wait or refuse). */
  tryRun<T>(job: () => Promise<T>): Promise<T> | undefined {
    if (this.active >= this.concurrency) return undefined;
    return this.run(job);
  }

  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.active >= this.concurrency) {
      if (this.waiting.length >= this.queueMax) {
        throw embeddingBusy();
      }
      const since = performance.now();
      await new Promise<void>((resolve) => this.waiting.push(resolve));
      this.observer?.waited((performance.now() - since) / 1000);
    } else {
      this.active++;
      this.observer?.waited(0);
    }
    try {
      return await job();
    } finally {
      const next = this.waiting.shift();
      if (next)
        next(); // hand the slot over directly, so `active` never drops below the real count
      else this.active--;
    }
  }
}
