// An ERPNext catalog in the Frappe double, built the way ERPNext users build one: Items whose Attach Image field
// holds an upload (Frappe attaches it to the Item), plus further image attachments, some of them private.
// Every picture differs (its own seed), so each stored image can be told from the others.
import type { Catalog } from '../../service/src/catalog/catalog.js';
import type { ErpNextOverrides } from '../../service/src/erpnext/connector.js';
import type { ImageRecord } from '../../service/src/schemas/records.js';
import { startTestApp } from './app.js';
import { FrappeDouble } from './frappe-double.js';
import { jpeg } from './images.js';

export interface SeededItem {
  name: string;
  /** File URLs as ERPNext stores them, the image field's first. */
  urls: string[];
  /** Their bytes, in the same order. */
  pictures: Buffer[];
}

let nextSeed = 1;

/** A new picture each call (small: the embedding model scales every picture to 224×224 anyway). */
export const freshPicture = () => jpeg(96, 72, nextSeed++);

/** An Item with `images` pictures: the first in its image field, the others attached; every third private. */
export async function seedItem(
  double: FrappeDouble,
  code: string,
  images: number,
  fields: { item_group?: string; brand?: string; item_name?: string } = {},
  picture: () => Promise<Buffer> = freshPicture,
): Promise<SeededItem> {
  double.addItem({ item_code: code, item_name: fields.item_name ?? `Name of ${code}`, ...fields });
  const urls: string[] = [];
  const pictures: Buffer[] = [];
  for (let index = 0; index < images; index++) {
    const content = await picture();
    pictures.push(content);
    const isPrivate = index % 3 === 2;
    const fileName = `${code}-${index}.jpg`;
    if (index === 0) {
      // An upload into the Attach Image field: the File row is attached when the Item is saved.
      const file = double.addFile({ fileName, content, isPrivate });
      double.updateItem(code, { image: String(file.file_url) });
      urls.push(String(file.file_url));
    } else {
      urls.push(String(double.addFile({ attachedTo: code, fileName, content, isPrivate }).file_url));
    }
  }
  return { name: code, urls, pictures };
}

/** `count` Items with 1 to 4 pictures each (1, 2, 3, 4, 1, ...), in four item groups and three brands. */
export async function seedCatalog(
  double: FrappeDouble,
  count: number,
  prefix = 'ITEM-',
  picture: () => Promise<Buffer> = freshPicture,
): Promise<SeededItem[]> {
  const items: SeededItem[] = [];
  for (let index = 0; index < count; index++) {
    const code = `${prefix}${String(index + 1).padStart(4, '0')}`;
    items.push(
      await seedItem(
        double,
        code,
        1 + (index % 4),
        {
          item_group: ['Products', 'Spares', 'Tools', 'Raw Material'][index % 4],
          brand: ['Acme', 'Globex', 'Initech'][index % 3],
        },
        picture,
      ),
    );
  }
  return items;
}

/** The API on a temp data directory with the ERPNext connector on a fresh Frappe double (no scheduled runs). */
export async function startWithErpNext(options: { env?: Record<string, string>; erpnext?: ErpNextOverrides } = {}) {
  const double = await FrappeDouble.start();
  const reader = double.addApiUser('sync@example.com', ['Item', 'File']);
  const t = await startTestApp({
    env: {
      ERPNEXT_URL: double.url,
      ERPNEXT_API_KEY: reader.key,
      ERPNEXT_API_SECRET: reader.secret,
      ERPNEXT_SYNC_INTERVAL: '0',
      ...options.env,
    },
    erpnext: options.erpnext,
  });
  return { double, reader, t };
}

/** A sync summary that changed nothing (duration_s aside). */
export const SYNC_ZERO = {
  items_added: 0,
  items_updated: 0,
  items_removed: 0,
  images_added: 0,
  images_removed: 0,
  failed: 0,
};

/** File downloads the double has served (public and private). */
export const fileDownloads = (double: FrappeDouble) =>
  double.requests.filter((r) => /^\/(private\/)?files\//.test(r.path)).length;

/** Every image in the catalog, by item. */
export async function catalogImages(catalog: Catalog): Promise<Map<string, ImageRecord[]>> {
  const byItem = new Map<string, ImageRecord[]>();
  for await (const page of catalog.images()) {
    for (const image of page) byItem.set(image.item_id, [...(byItem.get(image.item_id) ?? []), image]);
  }
  return byItem;
}
