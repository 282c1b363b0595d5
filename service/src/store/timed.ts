// Times every call the catalog makes to its collection, for /metrics (store durations by operation). A
// Proxy over the Collection port rather than a timer in each adapter: one place, both stores, and an
// adapter's new method is timed without anyone remembering to. The operation label is the port's method
// name, a fixed set, so labels cannot grow with the data.
import type { Collection } from './port.js';

/** Called once per settled store call (`ok` false when it threw or rejected). */
export type StoreObserver = (operation: string, seconds: number, ok: boolean) => void;

export function timedCollection(collection: Collection, observer: () => StoreObserver | undefined): Collection {
  return new Proxy(collection, {
    get(target, key) {
      const value: unknown = Reflect.get(target, key, target);
      if (typeof value !== 'function' || typeof key !== 'string') return value;
      return (...args: unknown[]) => {
        const observe = observer();
        if (!observe) return (value as (...a: unknown[]) => unknown).apply(target, args);
        const start = performance.now();
        const done = (ok: boolean) => observe(key, (performance.now() - start) / 1000, ok);
        let result: unknown;
        try {
          result = (value as (...a: unknown[]) => unknown).apply(target, args);
        } catch (error) {
          done(false);
          throw error;
        }
        if (!(result instanceof Promise)) {
          done(true);
          return result;
        }
        return result.then(
          (resolved: unknown) => {
            done(true);
            return resolved;
          },
          (error: unknown) => {
            done(false);
            throw error;
          },
        );
      };
    },
  });
}
