// Reading every point of a collection page by page (scroll in image-id order), for the commands that
// walk a whole collection: backup, check and migrate.
import type { Collection, ImageRecord } from '../service/src/store/port.js';

const PAGE = 512;

export async function* scanPoints(
  collection: Collection,
  options: { withVectors?: boolean; pageSize?: number } = {},
): AsyncGenerator<{ record: ImageRecord; vector?: Float32Array }> {
  let after: string | undefined;
  do {
    const page = await collection.scroll({ after, limit: options.pageSize ?? PAGE, withVectors: options.withVectors });
    yield* page.points;
    after = page.next;
  } while (after !== undefined);
}

/** The image ids of every point. */
export async function pointIds(collection: Collection): Promise<Set<string>> {
  const ids = new Set<string>();
  for await (const { record } of scanPoints(collection, { pageSize: 2048 })) ids.add(record.image_id);
  return ids;
}
