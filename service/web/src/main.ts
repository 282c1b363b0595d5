// The staff page: sign in once (the key stays in this tab's sessionStorage, never in a URL or a cookie),
// take or choose a photo, see the items it shows with their pictures, teach the catalog by adding the
// photo to the right item, and look after an item's images. What a key may do comes from GET /session:
// with a read key the teach and delete buttons are not even built. Texts from the catalog are only ever
// set as text (dom.ts).
import './app.css';
import { Api, ApiError, type FoundItem, type Item, type SearchAnswer, type SessionInfo } from './api.js';
import { byId, h, show } from './dom.js';
import { preparePhoto, type Photo } from './photo.js';
import { Thumbnails } from './thumbnails.js';

const KEY_STORAGE = 'image-search-key';

const el = {
  status: byId('status'),
  who: byId('who'),
  signOut: byId<HTMLButtonElement>('sign-out'),
  signIn: byId('sign-in'),
  signInForm: byId<HTMLFormElement>('sign-in-form'),
  key: byId<HTMLInputElement>('key'),
  app: byId('app'),
  search: byId('search'),
  camera: byId<HTMLInputElement>('camera'),
  file: byId<HTMLInputElement>('file'),
  drop: byId('drop'),
  group: byId<HTMLInputElement>('group'),
  groups: byId('groups'),
  photo: byId('photo'),
  photoImg: byId<HTMLImageElement>('photo-img'),
  photoInfo: byId('photo-info'),
  results: byId('results'),
  verdict: byId('verdict'),
  resultList: byId('result-list'),
  unlikely: byId<HTMLDetailsElement>('unlikely'),
  unlikelyList: byId('unlikely-list'),
  lookup: byId('lookup'),
  lookupForm: byId<HTMLFormElement>('lookup-form'),
  q: byId<HTMLInputElement>('q'),
  lookupList: byId('lookup-list'),
  item: byId('item'),
  back: byId('back'),
  itemTitle: byId('item-title'),
  itemFields: byId('item-fields'),
  itemImages: byId('item-images'),
};

interface State {
  api: Api;
  session: SessionInfo;
  thumbnails: Thumbnails;
  photo?: Photo & { url: string };
  groups: Set<string>;
  /** Increases with every search, so that only the answer to the latest one is shown. */
  searches: number;
  /** Where focus returns when the item view closes. */
  opener?: HTMLElement;
}

let state: State | undefined;

const canWrite = () => state?.session.access === 'write';
const nameOf = (item: { item_id: string; item_name: string | null }) => item.item_name || item.item_id;

function status(message: string, tone: 'info' | 'ok' | 'error' = 'info'): void {
  el.status.textContent = message;
  el.status.dataset.tone = tone;
}

/** Reports a failed request; a key the server stopped accepting signs the user out. */
function fail(error: unknown): void {
  if (error instanceof ApiError && error.code === 'unauthorized') {
    signOut('Your key is no longer accepted. Sign in again.');
    return;
  }
  status(error instanceof Error ? error.message : String(error), 'error');
}

// ---- signing in ----

async function start(key: string | null, typed: boolean): Promise<void> {
  const api = new Api(key);
  try {
    const session = await api.session();
    if (key) sessionStorage.setItem(KEY_STORAGE, key);
    enter(api, session, key !== null);
  } catch (error) {
    if (error instanceof ApiError && error.code === 'unauthorized') {
      sessionStorage.removeItem(KEY_STORAGE);
      showSignIn(typed ? 'That key is not accepted. Check it and try again.' : '');
    } else {
      fail(error);
    }
  }
}

function showSignIn(message: string): void {
  show(el.app, false);
  show(el.signOut, false);
  el.who.textContent = '';
  show(el.signIn, true);
  status(message, message ? 'error' : 'info');
  el.key.value = '';
  el.key.focus();
}

function enter(api: Api, session: SessionInfo, withKey: boolean): void {
  state = { api, session, thumbnails: new Thumbnails(api), groups: new Set(), searches: 0 };
  document.body.classList.toggle('read-only', session.access === 'read');
  el.who.textContent = session.access === 'write' ? 'Search and add photos' : 'Search only (read key)';
  show(el.signOut, withKey);
  show(el.signIn, false);
  show(el.app, true);
  status('');
}

function signOut(message = ''): void {
  sessionStorage.removeItem(KEY_STORAGE);
  state?.thumbnails.clear();
  if (state?.photo) URL.revokeObjectURL(state.photo.url);
  state = undefined;
  for (const list of [el.resultList, el.unlikelyList, el.lookupList, el.itemImages]) list.replaceChildren();
  show(el.results, false);
  show(el.photo, false);
  closeItem();
  showSignIn(message);
}

// ---- the photo and the search ----

function describePhoto(photo: Photo): string {
  const kb = (bytes: number) => `${Math.max(1, Math.round(bytes / 1024))} KB`;
  const size = photo.width ? `${photo.width} × ${photo.height} px, ` : '';
  const shrunk = photo.blob.size < photo.originalBytes ? ` (from ${kb(photo.originalBytes)})` : '';
  return `${size}${kb(photo.blob.size)}${shrunk}`;
}

async function usePhoto(file: Blob): Promise<void> {
  if (!state) return;
  if (file.type && !file.type.startsWith('image/')) {
    status('That file is not an image. Choose a photo (JPEG, PNG, WebP or HEIC).', 'error');
    return;
  }
  status('Preparing the photo…');
  const prepared = await preparePhoto(file);
  if (state.photo) URL.revokeObjectURL(state.photo.url);
  state.photo = { ...prepared, url: URL.createObjectURL(prepared.blob) };
  el.photoImg.src = state.photo.url;
  el.photoInfo.textContent = describePhoto(prepared);
  show(el.photo, true);
  el.lookupList.replaceChildren(); // its buttons were for the previous photo
  await runSearch();
}

async function runSearch(): Promise<void> {
  if (!state?.photo) return;
  const ticket = ++state.searches;
  closeItem();
  status('Searching…');
  el.results.setAttribute('aria-busy', 'true');
  try {
    const answer = await state.api.search(state.photo.blob, el.group.value.trim());
    if (ticket !== state.searches) return;
    renderResults(answer);
    status('');
  } catch (error) {
    fail(error);
  } finally {
    el.results.removeAttribute('aria-busy');
  }
}

function renderResults(answer: SearchAnswer): void {
  const group = el.group.value.trim();
  const where = group ? ` in the group “${group}”` : '';
  const rows = answer.results.map((row) => itemCard(row, row.confidence));
  el.resultList.replaceChildren();
  el.unlikelyList.replaceChildren();
  show(el.unlikely, false);
  el.verdict.dataset.match = answer.match;
  el.verdict.dataset.search = String(state?.searches ?? 0); // which search this shows (the browser tests wait on it)
  if (answer.match === 'none' || rows.length === 0) {
    el.verdict.textContent =
      `No match: this photo does not look like any catalog item${where}. Take another photo, or find the item ` +
      'by id or code below and add this photo to it.';
    el.unlikelyList.append(...rows);
    show(el.unlikely, rows.length > 0);
  } else {
    const first = answer.results[0]!;
    el.verdict.textContent =
      answer.match === 'confident'
        ? `Best match: ${nameOf(first)}.`
        : `Not sure: compare the pictures before you pick an item${where}.`;
    el.resultList.append(...rows);
  }
  for (const row of answer.results) if (row.item_group) state?.groups.add(row.item_group);
  el.groups.replaceChildren(...[...(state?.groups ?? [])].sort().map((g) => h('option', { attrs: { value: g } })));
  show(el.results, true);
}

// ---- item cards (search results and lookups) ----

type CardItem = Pick<FoundItem, 'item_id' | 'item_name' | 'item_code' | 'item_group' | 'image_id'>;

function itemCard(item: CardItem, confidence?: number): HTMLLIElement {
  const name = nameOf(item);
  const img = h('img', { class: 'thumb', attrs: { alt: `Picture of ${name}`, width: '96', height: '96' } });
  state?.thumbnails.show(img, item.image_id, 256);
  const details = [item.item_code && `Code ${item.item_code}`, item.item_group && `Group ${item.item_group}`]
    .filter(Boolean)
    .join(' · ');
  const actions = h('div', { class: 'actions' });
  if (canWrite() && state?.photo) actions.append(teachButton(item));
  actions.append(
    h(
      'button',
      {
        class: 'button',
        attrs: { type: 'button', 'aria-label': `Show item ${name}` },
        on: { click: (event) => void openItem(item.item_id, event.currentTarget as HTMLElement) },
      },
      'Show item',
    ),
  );
  const erpnext = state?.session.erpnext_url;
  if (erpnext) {
    const href = `${erpnext}/app/item/${encodeURIComponent(item.item_id)}`;
    actions.append(
      h(
        'a',
        { class: 'button quiet', attrs: { href, target: '_blank', rel: 'noopener noreferrer' } },
        'Open in ERPNext',
      ),
    );
  }
  const likelihood =
    confidence === undefined
      ? null
      : h(
          'p',
          { class: 'confidence' },
          h('meter', { attrs: { min: '0', max: '1', value: String(confidence), 'aria-hidden': 'true' } }),
          ` ${Math.round(confidence * 100)}% likely`,
        );
  return h(
    'li',
    { class: 'card' },
    img,
    h('div', { class: 'info' }, h('h3', {}, name), details && h('p', { class: 'meta' }, details), likelihood, actions),
  );
}

function teachButton(item: CardItem): HTMLButtonElement {
  const name = nameOf(item);
  const label = 'Add this photo to this item';
  const button = h(
    'button',
    { class: 'button primary', attrs: { type: 'button', 'aria-label': `${label}: ${name}` } },
    label,
  );
  button.addEventListener('click', () => {
    const photo = state?.photo;
    if (!state || !photo) return;
    button.disabled = true;
    button.textContent = 'Adding…';
    state.api.addPhoto(item.item_id, photo.blob).then(
      ({ created }) => {
        button.textContent = created ? 'Photo added ✓' : 'Already added ✓';
        button.classList.add('done');
        status(
          created ? `Added the photo to ${name}. The next search finds it.` : `${name} already has this photo.`,
          'ok',
        );
      },
      (error: unknown) => {
        button.disabled = false;
        button.textContent = label;
        fail(error);
      },
    );
  });
  return button;
}

async function lookUp(text: string): Promise<void> {
  if (!state) return;
  status('Looking up…');
  try {
    const { items } = await state.api.lookup(text);
    el.lookupList.replaceChildren(
      ...(items.length > 0
        ? items.map((item) => itemCard(item))
        : [h('li', { class: 'empty' }, `No item has the id or code “${text}”.`)]),
    );
    status('');
  } catch (error) {
    fail(error);
  }
}

// ---- the item view ----

async function openItem(itemId: string, opener?: HTMLElement): Promise<void> {
  if (!state) return;
  status('Loading the item…');
  try {
    const item = await state.api.item(itemId);
    state.opener = opener;
    renderItem(item);
    for (const section of [el.search, el.results, el.lookup]) section.classList.add('behind');
    show(el.item, true);
    el.itemTitle.focus();
    status('');
  } catch (error) {
    fail(error);
  }
}

function closeItem(): void {
  if (el.item.hidden) return;
  show(el.item, false);
  for (const section of [el.search, el.results, el.lookup]) section.classList.remove('behind');
  state?.opener?.focus();
}

const KIND_LABELS: Record<Item['images'][number]['kind'], string> = {
  catalog: 'Catalog picture',
  photo: 'Photo by staff',
};

function renderItem(item: Item): void {
  const name = nameOf(item);
  el.itemTitle.textContent = name;
  el.itemFields.textContent = [
    `Id ${item.item_id}`,
    item.item_code && `Code ${item.item_code}`,
    item.item_group && `Group ${item.item_group}`,
    item.brand && `Brand ${item.brand}`,
    item.disabled && 'Disabled',
  ]
    .filter(Boolean)
    .join(' · ');
  el.itemImages.replaceChildren(
    ...item.images.map((image) => {
      const kind = KIND_LABELS[image.kind];
      const date = new Date(image.created_at).toLocaleString();
      const img = h('img', {
        class: 'thumb',
        attrs: { alt: `${kind} of ${name}, ${date}`, width: '160', height: '160' },
      });
      state?.thumbnails.show(img, image.image_id, 256);
      const li = h('li', { class: 'tile' }, img, h('p', { class: 'meta' }, h('strong', {}, kind), h('br'), date));
      if (canWrite()) li.append(deleteButton(item, image.image_id, kind, li));
      return li;
    }),
  );
}

/** Deleting takes two presses, so that a slip of the thumb on a phone deletes nothing. */
function deleteButton(item: Item, imageId: string, kind: string, tile: HTMLLIElement): HTMLButtonElement {
  let armed: number | undefined;
  const button = h(
    'button',
    { class: 'button danger', attrs: { type: 'button', 'aria-label': `Delete this ${kind.toLowerCase()}` } },
    'Delete',
  );
  button.addEventListener('click', () => {
    if (!state) return;
    if (armed === undefined) {
      button.textContent = 'Press again to delete';
      status('Press the button again to delete this image.');
      armed = window.setTimeout(() => {
        armed = undefined;
        button.textContent = 'Delete';
      }, 5000);
      return;
    }
    window.clearTimeout(armed);
    button.disabled = true;
    const { api, thumbnails } = state;
    api.deleteImage(item.item_id, imageId).then(
      () => {
        thumbnails.forget(imageId);
        tile.remove();
        const left = el.itemImages.children.length;
        status(
          left > 0
            ? 'Image deleted.'
            : 'Image deleted. It was the last one, so the item is no longer in the search catalog.',
          'ok',
        );
        (el.itemImages.querySelector<HTMLElement>('button') ?? el.back).focus();
      },
      (error: unknown) => {
        button.disabled = false;
        fail(error);
      },
    );
  });
  return button;
}

// ---- wiring ----

for (const input of [el.camera, el.file]) {
  input.addEventListener('change', () => {
    const file = input.files?.[0];
    input.value = ''; // choosing the same file again must search again
    if (file) void usePhoto(file).catch(fail);
  });
}
document.addEventListener('paste', (event) => {
  const file = [...(event.clipboardData?.files ?? [])].find((f) => f.type.startsWith('image/'));
  if (file && state) {
    event.preventDefault();
    void usePhoto(file).catch(fail);
  }
});
// A file dropped anywhere is the photo (and the browser does not navigate away to show it).
document.addEventListener('dragover', (event) => {
  event.preventDefault();
  el.drop.classList.add('over');
});
document.addEventListener('dragleave', () => el.drop.classList.remove('over'));
document.addEventListener('drop', (event) => {
  event.preventDefault();
  el.drop.classList.remove('over');
  const file = event.dataTransfer?.files[0];
  if (file && state) void usePhoto(file).catch(fail);
});
el.group.addEventListener('change', () => void runSearch());
el.lookupForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const text = el.q.value.trim();
  if (text) void lookUp(text);
});
el.back.addEventListener('click', closeItem);
document.addEventListener('keydown', (event) => {
  if (event.key === 'Escape') closeItem();
});
el.signInForm.addEventListener('submit', (event) => {
  event.preventDefault();
  const key = el.key.value.trim();
  if (key) void start(key, true);
});
el.signOut.addEventListener('click', () => signOut());

void start(sessionStorage.getItem(KEY_STORAGE), false);
