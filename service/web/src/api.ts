// The page's client of the API: the key travels in the Image-Search-Api-Key header (never in a URL), every
// answer is typed by the server's own schemas (type-only imports: nothing of the server is bundled), and
// every error becomes an ApiError with the server's stable code and its message.
import type { Static } from '@sinclair/typebox';
import type { ErrorCode } from '../../src/errors.js';
import type { ThumbnailSize } from '../../src/images/thumbnail.js';
import type { ItemList, ItemView, SearchResult, Session, StoredImage } from '../../src/schemas/api.js';

export type SessionInfo = Static<typeof Session>;
export type SearchAnswer = Static<typeof SearchResult>;
export type SearchRow = SearchAnswer['results'][number];
export type Item = Static<typeof ItemView>;
export type FoundItem = Static<typeof ItemList>['items'][number];
export type Stored = StoredImage;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: ErrorCode | 'network_error',
    message: string,
  ) {
    super(message);
  }
}

const KEY_HEADER = 'Image-Search-Api-Key';
const path = (strings: TemplateStringsArray, ...ids: string[]) =>
  strings.reduce((out, part, i) => out + part + (i < ids.length ? encodeURIComponent(ids[i]!) : ''), '');

export class Api {
  constructor(readonly key: string | null) {}

  private async request(url: string, init: RequestInit = {}): Promise<Response> {
    const headers = new Headers(init.headers);
    if (this.key) headers.set(KEY_HEADER, this.key);
    let response: Response;
    try {
      response = await fetch(url, { ...init, headers, credentials: 'omit' });
    } catch {
      throw new ApiError(0, 'network_error', 'The server cannot be reached. Check the connection and try again.');
    }
    if (response.ok) return response;
    const body = (await response.json().catch(() => undefined)) as { error?: ErrorCode; message?: string } | undefined;
    throw new ApiError(
      response.status,
      body?.error ?? 'internal_error',
      body?.message ?? `The server answered ${response.status}.`,
    );
  }

  private async json<T>(url: string, init?: RequestInit): Promise<T> {
    return (await (await this.request(url, init)).json()) as T;
  }

  session = () => this.json<SessionInfo>('/session');

  search(photo: Blob, itemGroup: string): Promise<SearchAnswer> {
    const form = new FormData();
    form.append('top_k', '8');
    if (itemGroup) form.append('filter', JSON.stringify({ item_group: itemGroup }));
    form.append('file', photo, 'photo.jpg');
    return this.json('/search', { method: 'POST', body: form });
  }

  item = (itemId: string) => this.json<Item>(path`/items/${itemId}`);

  lookup = (text: string) => this.json<Static<typeof ItemList>>(`/items?q=${encodeURIComponent(text)}`);

  /** Stores the photo as a `photo` of the item; `created` is false when the item had these bytes already. */
  async addPhoto(itemId: string, photo: Blob): Promise<{ image: Stored; created: boolean }> {
    const form = new FormData();
    form.append('kind', 'photo');
    form.append('file', photo, 'photo.jpg');
    const response = await this.request(path`/items/${itemId}/images`, { method: 'POST', body: form });
    return { image: (await response.json()) as Stored, created: response.status === 201 };
  }

  async deleteImage(itemId: string, imageId: string): Promise<void> {
    await this.request(path`/items/${itemId}/images/${imageId}`, { method: 'DELETE' });
  }

  /** A thumbnail as a blob (an <img> cannot send the key); the browser's cache revalidates it by ETag. */
  async thumbnail(imageId: string, size: ThumbnailSize): Promise<Blob> {
    return (await this.request(`${path`/images/${imageId}`}/thumbnail?size=${size}`)).blob();
  }
}
