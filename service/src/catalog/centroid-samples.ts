// A sample of each kind's item centroids per collection, for the query statistics of item-level scoring
// (scoring.ts): how similar a query is to that kind's items in general. Reading a sample costs a few
// milliseconds, so it is kept for a while and refreshed in the background; a small catalog (every
// centroid fits in the sample) is read again sooner, since each new item changes its statistics visibly.
import { IMAGE_KINDS, type ImageKind } from '../schemas/records.js';
import type { Collection } from '../store/port.js';

/** Centroids per kind in a sample: enough for the mean and spread within a few per cent. */
export const SAMPLE_SIZE = 256;
const FRESH_MS = 30_000;
const SMALL_FRESH_MS = 2_000;

type Samples = Record<ImageKind, Float32Array[]>;

interface Entry {
  at: number;
  samples: Samples;
  refreshing?: Promise<Samples>;
}

export class CentroidSamples {
  private readonly entries = new Map<string, Entry>();

  constructor(private readonly now: () => number = Date.now) {}

  private async read(collection: Collection): Promise<Samples> {
    const lists = await Promise.all(IMAGE_KINDS.map((kind) => collection.sampleCentroids(kind, SAMPLE_SIZE)));
    return Object.fromEntries(IMAGE_KINDS.map((kind, i) => [kind, lists[i]!])) as Samples;
  }

  /** The samples of a collection: cached, refreshed when stale (the first call waits, later ones do not). */
  async of(collection: Collection): Promise<Samples> {
    const entry = this.entries.get(collection.name);
    if (!entry) {
      const samples = await this.read(collection);
      this.entries.set(collection.name, { at: this.now(), samples });
      return samples;
    }
    const small = IMAGE_KINDS.every((kind) => entry.samples[kind].length < SAMPLE_SIZE);
    const age = this.now() - entry.at;
    if (age > (small ? SMALL_FRESH_MS : FRESH_MS) && !entry.refreshing) {
      entry.refreshing = this.read(collection).then(
        (samples) => {
          entry.samples = samples;
          entry.at = this.now();
          entry.refreshing = undefined;
          return samples;
        },
        (error: unknown) => {
          entry.refreshing = undefined;
          throw error;
        },
      );
      // A small catalog is cheap to read and changes visibly: wait for it. A large one answers from the last sample.
      if (small) return entry.refreshing;
      entry.refreshing.catch(() => undefined);
    }
    return entry.samples;
  }

  /**
   * Called after every write: a small catalog's sample (all its centroids) is read again at the next search,
   * so that a search right after an ingest scores against the catalog as it is now.
   */
  noteWrite(collectionName: string): void {
    const entry = this.entries.get(collectionName);
    if (entry && IMAGE_KINDS.some((kind) => entry.samples[kind].length < SAMPLE_SIZE)) {
      this.entries.delete(collectionName);
    }
  }
}
