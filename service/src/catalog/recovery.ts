// Finishing what a crash interrupted, so that files and points agree again. Run by the catalog when it
// opens (before the API serves) and by `ops check --repair` on a live system. Every step can be repeated:
// a staged file is committed when its point exists and removed when it does not; a journaled delete is
// carried out again and then forgotten.
import type { Log } from '../log.js';
import type { Collection } from '../store/port.js';
import type { ImageFiles } from './image-files.js';

export interface Recovery {
  committed: number;
  discarded: number;
  deletesFinished: number;
}

export async function finishInterrupted(options: {
  collection: Collection;
  files: ImageFiles;
  log: Log;
  /** Leave staged files younger than this alone (an ingest may be writing them right now). */
  stagedOlderThanMs?: number;
}): Promise<Recovery> {
  const { collection, files, log } = options;
  const result: Recovery = { committed: 0, discarded: 0, deletesFinished: 0 };
  for (const imageId of await files.staged(options.stagedOlderThanMs ?? 0)) {
    const record = await collection.image(imageId);
    if (record) {
      await files.commit(imageId, record.file);
      result.committed++;
      log.warn(
        `Recovered image ${imageId} of item ${JSON.stringify(record.item_id)} left in staging by an ` +
          'interrupted ingest.',
      );
    } else {
      await files.discard(imageId);
      result.discarded++;
      log.warn(`Removed staged file ${imageId}: its ingest was interrupted before the point was written.`);
    }
  }
  for (const { id, intent } of await files.interruptedDeletes()) {
    if (!intent) {
      log.warn(`Removed an unreadable delete intent ${id} from the journal.`);
    } else if (intent.op === 'wipe') {
      await collection.deleteAll();
      await files.wipe();
      log.warn('Finished emptying the catalog (DELETE /items), which a crash had interrupted.');
    } else {
      await collection.deleteImages(intent.images.map((image) => image.image_id));
      await Promise.all(intent.images.map((image) => files.remove(image.file)));
      log.warn(`Finished deleting ${intent.images.length} image(s), which a crash had interrupted.`);
    }
    await files.endDelete(id);
    result.deletesFinished++;
  }
  return result;
}
