// The collections a migration works with: finding one by its real name, creating a target (or resuming
// into it when it holds the same model), and how a collection is named in the migration record.
import type { ModelManifest } from '../../service/src/embedding/model.js';
import type { CollectionInfo, VectorStore } from '../../service/src/store/port.js';
import { OpsError, type Reporter } from '../cli.js';
import type { CollectionRef } from './state.js';

export async function collectionInfo(store: VectorStore, name: string): Promise<CollectionInfo | undefined> {
  return (await store.listCollections()).find((c) => c.name === name);
}

/** Creates `name` for the model (recording its identity), or resumes into it when it holds that model's vectors. */
export async function ensureCollection(
  store: VectorStore,
  reporter: Reporter,
  name: string,
  manifest: Pick<ModelManifest, 'name' | 'dim'> & { sha256?: string },
): Promise<void> {
  const { name: model, dim, sha256 } = manifest;
  const existing = await collectionInfo(store, name);
  if (!existing) {
    await store.createCollection(name, dim, model, sha256);
    reporter.info(`created collection ${name} (${dim}-d, model ${model}${sha256 ? `, sha256 ${sha256}` : ''})`);
  } else if (sha256 && existing.modelSha256 && existing.modelSha256 !== sha256) {
    throw new OpsError(
      `collection ${name} exists with vectors of ${model} with other weights (sha256 ${existing.modelSha256}, not ` +
        `${sha256}); remove it or export the new model under another name`,
    );
  } else if (existing.dim !== dim || (existing.model !== null && existing.model !== model)) {
    throw new OpsError(
      `collection ${name} exists with ${existing.dim}-d vectors of model ${existing.model}, not ${dim}-d of ` +
        `${model}; remove it or choose another model`,
    );
  } else {
    reporter.info(`resuming: ${name} already holds ${existing.points} points`);
  }
}

export const refOf = (info: CollectionInfo): CollectionRef => ({
  collection: info.name,
  model: info.model,
  dim: info.dim,
});
