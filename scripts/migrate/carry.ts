// Carrying points from one collection to another: re-embedding each stored original with the target's
// model (or copying vectors as they are when the model is the same), adding what the target lacks and
// deleting what the plan says is gone. Every pass of a migration or rollback is one carry, so a run that
// stops part-way resumes by carrying again: points already in the target are skipped.
import type { Embedder } from '../../service/src/embedding/embedder.js';
import { isNotFound } from '../../service/src/lib/files.js';
import type { Collection, ImageRecord } from '../../service/src/store/port.js';
import { OpsError, type Reporter } from '../cli.js';
import { pointIds, scanPoints } from '../points.js';
import type { MigrationState } from './state.js';
import { DEFAULTS, type MigrateDeps } from './types.js';

export interface MissingImage {
  image_id: string;
  item_id: string;
  file: string;
  reason: string;
}

export interface CarryPlan {
  label: string;
  source: Collection;
  target: Collection;
  /** Re-embeds with this model; without it vectors are copied as they are (same model and width). */
  embedder?: Embedder;
  targetModel: string;
  /** Which points missing from the target are added (default: all). */
  shouldAdd?: (image_id: string) => boolean;
  /** Which points only the target has are deleted from it. */
  shouldDelete: (image_id: string) => boolean;
}

export interface CarryResult {
  added: number;
  deleted: number;
  missing: MissingImage[];
  sourceIds: Set<string>;
  /** The target's ids after this pass. */
  targetIds: Set<string>;
}

export class Carrier {
  private readonly batchSize: number;

  constructor(
    readonly deps: MigrateDeps,
    batchSize = DEFAULTS.batchSize,
  ) {
    this.batchSize = batchSize;
  }

  private checkAbort(): void {
    if (this.deps.signal?.aborted) {
      throw new OpsError('interrupted; what is done is kept: run the same command again to resume');
    }
  }

  /** Vectors for images; a batch that fails as a whole is retried image by image to find the bad ones. */
  private async embed(embedder: Embedder, images: Buffer[]): Promise<Array<Float32Array | Error>> {
    try {
      return await embedder.embedBatch(images);
    } catch {
      return Promise.all(images.map((bytes) => embedder.embed(bytes).catch((error: unknown) => error as Error)));
    }
  }

  /** Makes the target take the source's points (and forget deleted ones) as the plan says. */
  async carry(plan: CarryPlan): Promise<CarryResult> {
    const { reporter, files } = this.deps;
    const targetIds = await pointIds(plan.target);
    const sourceIds = new Set<string>();
    const missing: MissingImage[] = [];
    let added = 0;
    const sourceCount = await plan.source.count();
    const progress = reporter.progress(plan.label, Math.max(0, sourceCount - targetIds.size));
    let batch: Array<{ record: ImageRecord; vector?: Float32Array }> = [];

    const flush = async () => {
      this.checkAbort();
      if (batch.length === 0) return;
      const points: Array<{ record: ImageRecord; vector: Float32Array }> = [];
      if (plan.embedder) {
        const read = await Promise.all(
          batch.map(({ record }) =>
            files.readStored(record).then(
              (bytes) => ({ record, bytes }),
              (error: unknown) => ({
                record,
                error: isNotFound(error) ? 'file missing' : `unreadable (${(error as Error).message})`,
              }),
            ),
          ),
        );
        const readable = read.filter((entry): entry is { record: ImageRecord; bytes: Buffer } => 'bytes' in entry);
        for (const entry of read) if ('error' in entry) missing.push(missingOf(entry.record, entry.error));
        const vectors = await this.embed(
          plan.embedder,
          readable.map((entry) => entry.bytes),
        );
        readable.forEach((entry, i) => {
          const vector = vectors[i];
          if (vector instanceof Float32Array)
            points.push({ record: { ...entry.record, model: plan.targetModel }, vector });
          else missing.push(missingOf(entry.record, `not a decodable image (${vector.message})`));
        });
      } else {
        for (const { record, vector } of batch) if (vector) points.push({ record, vector });
      }
      await plan.target.upsertMany(points);
      for (const { record } of points) targetIds.add(record.image_id);
      added += points.length;
      progress.advance(batch.length);
      batch = [];
    };

    for await (const point of scanPoints(plan.source, { withVectors: !plan.embedder })) {
      sourceIds.add(point.record.image_id);
      if (targetIds.has(point.record.image_id) || (plan.shouldAdd && !plan.shouldAdd(point.record.image_id))) continue;
      batch.push(point);
      if (batch.length >= this.batchSize) await flush();
    }
    await flush();
    progress.done();

    const doomed = [...targetIds].filter((id) => !sourceIds.has(id) && plan.shouldDelete(id));
    for (let i = 0; i < doomed.length; i += 256) await plan.target.deleteImages(doomed.slice(i, i + 256));
    for (const id of doomed) targetIds.delete(id);
    return { added, deleted: doomed.length, missing, sourceIds, targetIds };
  }
}

function missingOf(record: ImageRecord, reason: string): MissingImage {
  return { image_id: record.image_id, item_id: record.item_id, file: record.file, reason };
}

export function reportMissing(missing: MissingImage[], reporter: Reporter): void {
  for (const entry of missing.slice(0, 50)) {
    reporter.warn(`image ${entry.image_id} of item ${JSON.stringify(entry.item_id)}: ${entry.file} ${entry.reason}`);
  }
  if (missing.length > 50) reporter.warn(`... and ${missing.length - 50} more images that cannot be read`);
}

/** Ids in both sets, sorted (what the record of a switch keeps as "shared"). */
export const intersect = (a: Set<string>, b: Set<string>) => [...a].filter((id) => b.has(id)).sort();

/**
 * After a switch: takes in what reached the previous collection around it, forgets what was deleted
 * there. Points left out at the switch (unreadable originals, already reported) are tried again only
 * when asked (a later run, after the files may have been restored).
 */
export async function finalCatchUp(
  carrier: Carrier,
  state: MigrationState,
  embedder: Embedder,
  retryLeftOut: boolean,
): Promise<CarryResult> {
  const { store, reporter } = carrier.deps;
  const shared = new Set(state.shared);
  const leftOut = new Set(retryLeftOut ? [] : (state.leftOut ?? []));
  const result = await carrier.carry({
    label: `catching up from ${state.previous.collection}`,
    source: store.collection(state.previous.collection),
    target: store.collection(state.live.collection),
    embedder,
    targetModel: embedder.manifest.name,
    shouldAdd: (id) => !shared.has(id) && !leftOut.has(id),
    shouldDelete: (id) => shared.has(id),
  });
  reportMissing(result.missing, reporter);
  if (result.added + result.deleted > 0) {
    reporter.info(
      `caught up: ${result.added} point(s) added and ${result.deleted} deleted, from changes around the switch`,
    );
  }
  return result;
}
