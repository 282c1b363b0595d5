// Qdrant collection snapshots: create, list and delete with the client; download (verified against the
// sha256 checksum Qdrant reports) and recover by upload with priority "snapshot" over HTTP, since the JS
// client has no helpers for those.
import { openAsBlob } from 'node:fs';
import { Readable } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ChecksumError, writeStreamAtomic, type Digest } from '../../lib/files.js';
import { StoreBackupError } from '../port.js';
import type { QdrantStore } from './store.js';

export interface SnapshotDescription {
  name: string;
  creation_time?: string | null;
  size: number;
  checksum?: string | null;
}

/**
 * Snapshots of one Qdrant server: create, list and delete through the store's own client; download and
 * upload (which the client has no helpers for) over HTTP with the same URL and API key.
 */
export class QdrantSnapshots {
  private readonly base: string;
  /** The URL without credentials, for messages. */
  private readonly where: string;

  constructor(
    private readonly store: QdrantStore,
    url: string,
    private readonly apiKey?: string,
    private readonly fetcher: typeof fetch = fetch,
  ) {
    this.base = url.replace(/\/+$/, '');
    const shown = new URL(this.base);
    shown.username = '';
    shown.password = '';
    this.where = shown.toString().replace(/\/$/, '');
  }

  private async request(what: string, path: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.apiKey) headers.set('api-key', this.apiKey);
    let response: Response;
    try {
      response = await this.fetcher(`${this.base}${path}`, { ...init, headers });
    } catch (error) {
      const cause = (error as { cause?: { code?: string; message?: string } }).cause;
      throw new StoreBackupError(
        `Qdrant at ${this.where} does not answer (${what}: ` +
          `${cause?.code ?? cause?.message ?? (error as Error).message}); check QDRANT_URL and that Qdrant is running`,
      );
    }
    if (!response.ok) {
      let detail = response.statusText;
      try {
        const body = (await response.json()) as { status?: { error?: string } | string };
        detail =
          typeof body.status === 'object' && body.status?.error
            ? body.status.error
            : JSON.stringify(body.status ?? body);
      } catch {
        // not JSON: keep the status text
      }
      const hint = response.status === 401 || response.status === 403 ? '; check QDRANT_API_KEY' : '';
      throw new QdrantHttpError(response.status, `Qdrant refused ${what} (${response.status}: ${detail})${hint}`);
    }
    return response;
  }

  private async result<T>(what: string, path: string, init?: RequestInit): Promise<T> {
    const body = (await (await this.request(what, path, init)).json()) as { result: T };
    return body.result;
  }

  private collectionPath(collection: string) {
    return `/collections/${encodeURIComponent(collection)}/snapshots`;
  }

  /** Creates a snapshot and returns when it is complete. */
  async create(collection: string): Promise<SnapshotDescription> {
    const created = await this.store.call(`creating a snapshot of ${collection}`, (c) =>
      c.createSnapshot(collection, { wait: true }),
    );
    if (!created) throw new StoreBackupError(`Qdrant did not describe the snapshot of ${collection} it made`);
    return created;
  }

  list(collection: string): Promise<SnapshotDescription[]> {
    return this.store.call(`listing the snapshots of ${collection}`, (c) => c.listSnapshots(collection));
  }

  /** Downloads to `target` atomically; the size and (when Qdrant gives one) the checksum must match. */
  async download(collection: string, snapshot: SnapshotDescription, target: string): Promise<Digest> {
    const what = `downloading snapshot ${snapshot.name} of ${collection}`;
    const response = await this.request(
      what,
      `${this.collectionPath(collection)}/${encodeURIComponent(snapshot.name)}`,
    );
    if (!response.body) throw new StoreBackupError(`Qdrant sent no data when ${what}`);
    try {
      return await writeStreamAtomic(Readable.fromWeb(response.body as WebReadableStream<Uint8Array>), target, {
        size: snapshot.size,
        sha256: snapshot.checksum ?? undefined,
        what: `snapshot ${snapshot.name}`,
      });
    } catch (error) {
      if (error instanceof ChecksumError)
        throw new StoreBackupError(`the download of ${error.message}; nothing was kept, run the backup again`);
      throw error;
    }
  }

  /** Replaces (or creates) `collection` with the snapshot file; Qdrant verifies the checksum first. */
  async recover(collection: string, file: string, sha256: string): Promise<void> {
    const form = new FormData();
    form.append('snapshot', await openAsBlob(file), 'backup.snapshot');
    const query = new URLSearchParams({ wait: 'true', priority: 'snapshot', checksum: sha256 });
    await this.result(
      `recovering ${collection} from its snapshot`,
      `${this.collectionPath(collection)}/upload?${query.toString()}`,
      { method: 'POST', body: form },
    );
  }

  /** Deletes a snapshot inside Qdrant; one that is already gone (or whose collection is) counts as deleted. */
  async delete(collection: string, name: string): Promise<void> {
    await this.store.callOr(`deleting snapshot ${name} of ${collection}`, false, (c) =>
      c.deleteSnapshot(collection, name, { wait: true }),
    );
  }
}

class QdrantHttpError extends StoreBackupError {
  constructor(
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}
