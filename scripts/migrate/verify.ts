// The checks a new collection must pass before the alias is switched to it: it holds every readable point
// of the source and nothing else, and a sample of stored images each finds its own item first with the new
// model. A failure leaves the alias where it was.
import type { Embedder } from '../../service/src/embedding/embedder.js';
import type { Collection } from '../../service/src/store/port.js';
import { OpsError } from '../cli.js';
import type { CarryResult } from './carry.js';
import type { MigrateDeps } from './types.js';

/** The target's count must be exactly the source's readable points after the last carry. */
export async function verifyCounts(
  deps: MigrateDeps,
  names: { source: string; target: string },
  target: Collection,
  last: CarryResult,
): Promise<void> {
  const targetCount = await target.count();
  const stray = [...last.targetIds].filter((id) => !last.sourceIds.has(id)).length;
  if (
    targetCount !== last.targetIds.size ||
    stray > 0 ||
    last.targetIds.size + last.missing.length < last.sourceIds.size
  ) {
    throw new OpsError(
      `verification failed: ${names.target} holds ${targetCount} points where ` +
        `${last.sourceIds.size - last.missing.length} were expected; the alias was not switched, run again`,
    );
  }
  deps.reporter.info(
    `verified: ${names.target} holds all ${targetCount} points of ` +
      `${names.source}${last.missing.length ? ` except ${last.missing.length} unreadable` : ''}`,
  );
}

/** Every sampled image must find its own item first (or tied first: identical photos of two items). */
export async function verifySearch(
  deps: MigrateDeps,
  target: Collection,
  ids: Set<string>,
  embedder: Embedder,
  sample: number,
): Promise<void> {
  const pool = [...ids];
  for (let i = pool.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [pool[i], pool[j]] = [pool[j], pool[i]];
  }
  const failures: string[] = [];
  let checked = 0;
  for (const imageId of pool.slice(0, sample)) {
    const record = await target.image(imageId);
    if (!record) continue; // deleted meanwhile
    let bytes: Buffer;
    try {
      bytes = await deps.files.read(record.file);
    } catch {
      continue; // deleted meanwhile (the item and its files)
    }
    // Disabled items too: they are stored and searchable on request, so their vectors must be right as well.
    const hits = await target.searchItems(await embedder.embed(bytes), 5, { includeDisabled: true });
    const own = hits.find((hit) => hit.record.item_id === record.item_id);
    if (!own || own.score < hits[0].score - 1e-5) {
      failures.push(
        `image ${imageId} of item ${JSON.stringify(record.item_id)} found ` +
          `${hits[0] ? `item ${JSON.stringify(hits[0].record.item_id)}` : 'nothing'} first`,
      );
    }
    checked++;
  }
  if (failures.length > 0) {
    throw new OpsError(
      `verification failed: ${failures.length} of ${checked} sampled images did not find their own item ` +
        `first (${failures.slice(0, 3).join('; ')}); the alias was not switched`,
    );
  }
  deps.reporter.info(`verified: ${checked} sampled images each found their own item first`);
}
