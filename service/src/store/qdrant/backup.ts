// Backup and restore of the Qdrant store. Dump: one collection snapshot per collection of this deployment,
// taken inside Qdrant and downloaded (checked against the sha256 Qdrant reports). A snapshot cannot be
// edited, so points of items deleted during the backup stay in it (the check after a restore lists them).
// Collection snapshots hold no aliases: the manifest records them and restore recreates them. (A
// full-storage snapshot would hold them, but Qdrant loads one only at a restart with --storage-snapshot,
// which a restore into the running stack cannot do.) Restore: online, each collection recovered from its
// uploaded snapshot with priority "snapshot", then the aliases.
import path from 'node:path';
import { insideRoot } from '../../lib/files.js';
import { StoreBackupError, type CollectionInfo, type DumpFile, type StoreBackup, type StoreDump } from '../port.js';
import { QdrantSnapshots } from './snapshots.js';
import type { QdrantStore } from './store.js';

export class QdrantBackup implements StoreBackup {
  readonly kind = 'qdrant' as const;
  readonly snapshots: QdrantSnapshots;

  constructor(
    private readonly store: QdrantStore,
    options: { url: string; apiKey?: string; log?: (message: string) => void; fetcher?: typeof fetch },
  ) {
    this.snapshots = new QdrantSnapshots(store, options.url, options.apiKey, options.fetcher);
    this.log = options.log ?? (() => {});
  }

  private readonly log: (message: string) => void;

  async dump(dir: string, collections: CollectionInfo[]): Promise<StoreDump> {
    const files: DumpFile[] = [];
    const abort = () => this.forget(files).catch(() => undefined);
    try {
      for (const collection of collections) {
        this.log(`snapshot of ${collection.name} (${collection.points} points)`);
        const description = await this.snapshots.create(collection.name);
        const entry: DumpFile = {
          collection: collection.name,
          name: description.name,
          file: path.join('snapshots', collection.name, description.name),
          size: description.size,
          sha256: '',
        };
        files.push(entry);
        if (!description.checksum)
          this.log(`Qdrant reported no checksum for ${description.name}; only its size is verified`);
        entry.sha256 = (await this.snapshots.download(collection.name, description, path.join(dir, entry.file))).sha256;
      }
    } catch (error) {
      await abort();
      throw error;
    }
    return { points: this.store, editable: false, seal: async () => files, abort };
  }

  async assertRestorable(): Promise<void> {
    await this.store.ping();
  }

  async restore(dir: string, files: DumpFile[], aliases: Record<string, string>): Promise<{ previous?: string }> {
    for (const snapshot of files) {
      if (!snapshot.collection) throw new StoreBackupError(`snapshot ${snapshot.file} names no collection`);
      this.log(`recovering ${snapshot.collection} from ${snapshot.name ?? snapshot.file} (priority snapshot)`);
      await this.snapshots.recover(snapshot.collection, insideRoot(dir, snapshot.file), snapshot.sha256);
    }
    for (const [alias, collection] of Object.entries(aliases)) {
      try {
        await this.store.setAlias(alias, collection);
      } catch (error) {
        throw new StoreBackupError(
          `the collections are restored, but alias ${alias} → ${collection} could not be recreated: ` +
            `${(error as Error).message}`,
        );
      }
      this.log(`alias ${alias} → ${collection}`);
    }
    return {};
  }

  async forget(files: DumpFile[]): Promise<void> {
    for (const file of files) if (file.collection && file.name) await this.snapshots.delete(file.collection, file.name);
  }
}
