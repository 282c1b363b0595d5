// Duplicate warnings: an image that another item already has (the same bytes, or the same picture resized,
// re-encoded or lightly cropped) usually means the product was entered twice, or a photo went to the wrong
// item. The embedding finds the candidates (a near copy is among an image's nearest neighbours) but cannot
// decide: a resized copy scores 0.93-0.96 cosine with its original, two cartons of one brand 0.96. So every
// candidate is verified on the two originals by pixel alignment (images/near-copy.ts); identical bytes
// need no verification. Used by ingest/add image (a warning in the answer, nothing refused) and by
// `ops duplicates` (the whole catalog).
import { compareSignatures, imageSignature, type Signature } from '../images/near-copy.js';
import type { Duplicate } from '../schemas/api.js';
import type { Collection, ImageRecord } from '../store/port.js';
import type { ImageFiles } from './image-files.js';

/** Nearest other items whose best image is checked; a copy is (far) nearer than this many distinct items. */
export const DUPLICATE_CANDIDATES = 5;
/**
 * Candidates below this cosine are not checked. Measured with MobileNetV2 on grocery-dev: resized, cropped and
 * re-encoded copies score ≥ 0.85 with their original, so 0.75 leaves a margin for other models.
 */
export const DUPLICATE_MIN_COSINE = 0.75;

export interface DuplicateQuery {
  collection: Collection;
  files: ImageFiles;
  /** The image's own item (its other images are not duplicates). */
  itemId: string;
  bytes: Buffer;
  sha256: string;
  vector: Float32Array;
  /** Reports an image that could not be compared (unreadable file); the check goes on without it. */
  warn: (message: string) => void;
}

/** Other items' images that are copies of `bytes`, best first. */
export async function findDuplicates(query: DuplicateQuery): Promise<Duplicate[]> {
  const { collection, itemId, vector } = query;
  const candidates = (await collection.searchItems(vector, DUPLICATE_CANDIDATES + 1, { includeDisabled: true }))
    .filter((match) => match.record.item_id !== itemId && match.score >= DUPLICATE_MIN_COSINE)
    .slice(0, DUPLICATE_CANDIDATES);
  if (candidates.length === 0) return [];
  let own: Promise<Signature> | undefined;
  const found: Duplicate[] = [];
  for (const { record, score } of candidates) {
    const reason = await copyReason(query, record, () => (own ??= imageSignature(query.bytes)));
    if (reason) found.push({ item_id: record.item_id, image_id: record.image_id, score: Math.min(1, score), reason });
  }
  return found;
}

async function copyReason(
  query: DuplicateQuery,
  record: ImageRecord,
  own: () => Promise<Signature>,
): Promise<Duplicate['reason'] | undefined> {
  if (record.sha256 === query.sha256) return 'same_bytes';
  try {
    const theirs = await imageSignature(await query.files.readStored(record));
    return compareSignatures(await own(), theirs).nearCopy ? 'near_copy' : undefined;
  } catch (error) {
    query.warn(`Duplicate check skipped image ${record.image_id}: ${(error as Error).message}`);
    return undefined;
  }
}

/** Two items sharing a copy of one picture (`ops duplicates`). */
export interface DuplicatePair {
  item_a: string;
  image_a: string;
  item_b: string;
  image_b: string;
  score: number;
  reason: Duplicate['reason'];
}

/** Signatures kept while walking a catalog: neighbours come back often, a few hundred cover them. */
const SIGNATURE_CACHE = 512;

/**
 * Every pair of images of different items that are copies, over the whole collection (one neighbour search
 * per image, so minutes for 100k images). `progress` is called with the images done so far.
 */
export async function catalogDuplicates(
  collection: Collection,
  files: ImageFiles,
  options: { warn: (message: string) => void; progress?: (done: number) => void; pageSize?: number },
): Promise<DuplicatePair[]> {
  const signatures = new Map<string, Promise<Signature>>();
  const signatureOf = (record: ImageRecord) => {
    let signature = signatures.get(record.image_id);
    if (!signature) {
      signature = files.readStored(record).then(imageSignature);
      signatures.set(record.image_id, signature);
      if (signatures.size > SIGNATURE_CACHE) signatures.delete(signatures.keys().next().value!);
    } else {
      signatures.delete(record.image_id); // most recently used last
      signatures.set(record.image_id, signature);
    }
    return signature;
  };
  const checked = new Set<string>();
  const pairs: DuplicatePair[] = [];
  let done = 0;
  let after: string | undefined;
  do {
    const page = await collection.scroll({ after, limit: options.pageSize ?? 256, withVectors: true });
    for (const { record, vector } of page.points) {
      const matches = await collection.searchItems(vector!, DUPLICATE_CANDIDATES + 1, { includeDisabled: true });
      for (const { record: other, score } of matches) {
        if (other.item_id === record.item_id || score < DUPLICATE_MIN_COSINE) continue;
        const [a, b] = record.image_id < other.image_id ? [record, other] : [other, record];
        const key = `${a.image_id} ${b.image_id}`;
        if (checked.has(key)) continue;
        checked.add(key);
        let reason: Duplicate['reason'] | undefined = a.sha256 === b.sha256 ? 'same_bytes' : undefined;
        if (!reason) {
          try {
            const [sa, sb] = await Promise.all([signatureOf(a), signatureOf(b)]);
            if (compareSignatures(sa, sb).nearCopy) reason = 'near_copy';
          } catch (error) {
            options.warn(`could not compare images ${a.image_id} and ${b.image_id}: ${(error as Error).message}`);
          }
        }
        if (reason) {
          const pair = { item_a: a.item_id, image_a: a.image_id, item_b: b.item_id, image_b: b.image_id };
          pairs.push({ ...pair, score: Math.min(1, score), reason });
        }
      }
      options.progress?.(++done);
    }
    after = page.next;
  } while (after !== undefined);
  return pairs.sort((x, y) => y.score - x.score || x.item_a.localeCompare(y.item_a));
}
