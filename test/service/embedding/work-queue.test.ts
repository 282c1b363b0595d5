import { describe, expect, it } from 'vitest';
import { ServiceError } from '../../../service/src/errors.js';
import { WorkQueue } from '../../../service/src/embedding/work-queue.js';

const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('WorkQueue', () => {
  it('runs at most `concurrency` jobs, queues up to `queueMax`, refuses the rest with 503 busy', async () => {
    const queue = new WorkQueue(2, 1);
    const gates = [deferred(), deferred(), deferred()];
    let running = 0;
    let peak = 0;
    const job = (gate: { promise: Promise<void> }) => async () => {
      running++;
      peak = Math.max(peak, running);
      await gate.promise;
      running--;
    };
    const runs = gates.map((gate) => queue.run(job(gate)));
    const refused = await queue.run(async () => 'never').catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ServiceError);
    expect(refused).toMatchObject({ status: 503, code: 'busy', headers: { 'retry-after': '1' } });
    expect(queue.pending).toBe(3);
    gates.forEach((gate) => gate.resolve());
    await Promise.all(runs);
    expect(peak).toBe(2);
    expect(queue.pending).toBe(0);
  });

  it('frees the slot when a job fails', async () => {
    const queue = new WorkQueue(1, 0);
    await expect(queue.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    await expect(queue.run(async () => 'next')).resolves.toBe('next');
  });
});
