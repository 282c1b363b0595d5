// The collections a migration works with: finding one by its real name, creating a target (or resuming
// into it when it holds the same model), and how a collection is named in the migration record.
import type { CollectionInfo, VectorStore } from '../../service/src/store/port.js';
import { OpsError, type Reporter } from '../cli.js';
import type { CollectionRef } from './state.js';

export async function collectionInfo(store: VectorStore, name: string): Promise<CollectionInfo | undefined> {
  return (await store.listCollections()).find((c) => c.name === name);
}

/** Creates `name` for the model, or resumes into it when it already holds that model's vectors. */
export async function ensureCollection(
  store: VectorStore,
  reporter: Reporter,
  name: string,
  dim: number,
  model: string,
): Promise<void> {
  const existing = await collectionInfo(store, name);
  if (!existing) {
    await store.createCollection(name, dim, model);
    reporter.info(`created collection ${name} (${dim}-d, model ${model})`);
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
