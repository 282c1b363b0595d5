// Thumbnails for <img> elements. An <img src> cannot carry the key header, so each thumbnail is fetched
// with it and shown from a blob: URL (the CSP allows blob: images and nothing else from outside). Each is
// fetched once per page session; the URLs are released when the user signs out.
import type { Api } from './api.js';

type Size = Parameters<Api['thumbnail']>[1];

const release = (url: string) => URL.revokeObjectURL(url);

export class Thumbnails {
  private readonly urls = new Map<string, Promise<string>>();

  constructor(private readonly api: Api) {}

  /** Fills `img` with the thumbnail; on failure the img keeps its alt text and gets the class `missing`. */
  show(img: HTMLImageElement, imageId: string, size: Size): void {
    const key = `${imageId}/${size}`;
    let url = this.urls.get(key);
    if (!url) {
      url = this.api.thumbnail(imageId, size).then((blob) => URL.createObjectURL(blob));
      url.catch(() => this.urls.delete(key)); // not cached: a later view tries again
      this.urls.set(key, url);
    }
    url.then(
      (src) => (img.src = src),
      () => img.classList.add('missing'),
    );
  }

  /** Forgets one image's thumbnails (it was deleted). */
  forget(imageId: string): void {
    for (const [key, url] of this.urls) {
      if (!key.startsWith(`${imageId}/`)) continue;
      this.urls.delete(key);
      void url.then(release, () => undefined);
    }
  }

  clear(): void {
    for (const url of this.urls.values()) void url.then(release, () => undefined);
    this.urls.clear();
  }
}
