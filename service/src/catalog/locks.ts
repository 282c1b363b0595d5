// Serialization inside this process. Per item: two concurrent ingests of one new item id must give one
// 201 and one 409, and neither adapter offers a transaction spanning "check, write file, upsert". Catalog
// wide: a wipe (DELETE /items) must not interleave with any write, or files and points drift apart.
/**
 * What the catalog needs to serialize writes per item. KeyedLock does it inside one process; a cross-process
 * implementation (lib/process-lock.ts) also offers `all`, under which start-up recovery runs.
 */
export interface ItemLock {
  run<T>(key: string, job: () => Promise<T>): Promise<T>;
  /** Runs `job` while no item is locked anywhere. */
  all?<T>(job: () => Promise<T>): Promise<T>;
}

export class KeyedLock implements ItemLock {
  private readonly tails = new Map<string, Promise<void>>();

  async run<T>(key: string, job: () => Promise<T>): Promise<T> {
    const previous = this.tails.get(key) ?? Promise.resolve();
    let release!: () => void;
    const current = new Promise<void>((resolve) => (release = resolve));
    const tail = previous.then(() => current);
    this.tails.set(key, tail);
    await previous;
    try {
      return await job();
    } finally {
      release();
      if (this.tails.get(key) === tail) this.tails.delete(key);
    }
  }
}

/** Many shared holders at once, or one exclusive holder; waiting exclusive holders go before new shared ones. */
export class SharedExclusiveLock {
  private shared = 0;
  private exclusive = false;
  private readonly waiting: Array<{ exclusive: boolean; grant: () => void }> = [];

  async runShared<T>(job: () => Promise<T>): Promise<T> {
    await this.acquire(false);
    try {
      return await job();
    } finally {
      this.shared--;
      this.wake();
    }
  }

  async runExclusive<T>(job: () => Promise<T>): Promise<T> {
    await this.acquire(true);
    try {
      return await job();
    } finally {
      this.exclusive = false;
      this.wake();
    }
  }

  private acquire(exclusive: boolean): Promise<void> {
    const free = exclusive ? !this.exclusive && this.shared === 0 : !this.exclusive && this.waiting.length === 0;
    if (free) {
      this.take(exclusive);
      return Promise.resolve();
    }
    return new Promise((resolve) => this.waiting.push({ exclusive, grant: resolve }));
  }

  private take(exclusive: boolean): void {
    if (exclusive) this.exclusive = true;
    else this.shared++;
  }

  private wake(): void {
    while (this.waiting.length > 0 && !this.exclusive) {
      const next = this.waiting[0];
      if (next.exclusive && this.shared > 0) return;
      this.waiting.shift();
      this.take(next.exclusive);
      next.grant();
      if (next.exclusive) return;
    }
  }
}
