// The "Find by photo" Client Script (service/erpnext-client/find-by-photo.js) in a real browser: Debian's Chromium
// driven by playwright-core, on a page standing in for ERPNext's desk, calling the real service (embedded store,
// the small real ONNX test model) on another origin, so CORS and the read key are exercised for real. The desk
// page is served from loopback by this test; the service only admits it through CORS_ORIGINS.
//
// The stand-in implements exactly the Frappe APIs the script declares in service/erpnext-client/frappe.d.ts, as
// Frappe's own code behaves (frappe/public/js/frappe/...):
// - runs Client Scripts with `new Function(script)()`, after ERPNext's own list settings (model/model.js
//   init_doctype, form/script_manager.js); a DocType's meta can load, and its scripts run, more than once;
// - `frappe.listview_settings[doctype].onload(listview)` when the list opens (list/list_view.js), with
//   `listview.page.add_inner_button(label, action)` (ui/page.js);
// - `frappe.ui.form.on(doctype, {refresh})`, one form object per DocType reused for every document shown
//   (form/form.js), whose grid's `add_custom_button(label, click)` adds a button once per label and returns it
//   as jQuery (only `toggleClass` is used) (form/grid.js);
// - `frm.add_child(fieldname)`, `frm.refresh_field(fieldname)`, `frappe.model.set_value(cdt, cdn, field, value)`
//   (a Promise), `frappe.set_route(...)`, `frappe.msgprint(message)`, `__(text)`;
// - `new frappe.ui.Dialog({title, size})` with its `.body` element, `show()`, `hide()` and `on_hide`
//   (ui/dialog.js).
// Anything else the script touched would be undefined here and fail the test.
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumFor, launchChromium } from '../../support/chromium.js';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../../support/images.js';
import { multipart, startTestApp, type TestApp } from '../../support/app.js';

const CAN_RUN = chromiumFor('find-by-photo browser tests');

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
const SCRIPT = readFileSync(path.join(root, 'service/erpnext-client/find-by-photo.js'), 'utf8');
const WRITE_KEY = 'w'.repeat(40);
const READ_KEY = 'r'.repeat(40);
const XSS_NAME = '<img src=x onerror=alert(1)>';

/** The script as an operator pastes it into ERPNext: the two settings filled in. */
function configured(apiUrl: string, readKey: string): string {
  const url = "const IMAGE_SEARCH_URL = 'https://image-search.example.com';";
  const key = "const IMAGE_SEARCH_READ_KEY = 'paste-the-read-key-here';";
  expect(SCRIPT.split(url)).toHaveLength(2);
  expect(SCRIPT.split(key)).toHaveLength(2);
  return SCRIPT.replace(url, `const IMAGE_SEARCH_URL = '${apiUrl}';`).replace(
    key,
    `const IMAGE_SEARCH_READ_KEY = '${readKey}';`,
  );
}

const STAND_IN = String.raw`
window.calls = [];
const handlers = {};
const forms = {};
const rows = {};
let counter = 0;
const own = (o, k) => Object.prototype.hasOwnProperty.call(o, k);
window.__ = (text) => { if (typeof text !== 'string') throw new TypeError('__ takes a string'); return text; };
class Dialog {
  constructor(options) {
    for (const key of Object.keys(options)) {
      if (!['title', 'size'].includes(key)) throw new Error('Dialog option ' + key);
    }
    this.display = false;
    this.$wrapper = document.createElement('div');
    this.$wrapper.className = 'modal';
    this.$wrapper.setAttribute('role', 'dialog');
    this.$wrapper.setAttribute('aria-label', options.title);
    this.$wrapper.hidden = true;
    const title = document.createElement('h4');
    title.className = 'modal-title';
    title.textContent = options.title;
    this.body = document.createElement('div');
    this.body.className = 'modal-body';
    this.$wrapper.append(title, this.body);
    document.body.append(this.$wrapper);
  }
  show() { this.$wrapper.hidden = false; this.display = true; }
  hide() {
    if (!this.display) return;
    this.$wrapper.hidden = true;
    this.display = false;
    this.onhide && this.onhide();
    this.on_hide && this.on_hide();
  }
}
const jq = (element) => ({
  toggleClass(name, state) { element.classList.toggle(name, state); return this; },
});
function makeForm(doctype) {
  const wrapper = document.createElement('section');
  wrapper.dataset.doctype = doctype;
  const grid_buttons = document.createElement('div');
  grid_buttons.className = 'grid-buttons';
  wrapper.append(grid_buttons);
  document.body.append(wrapper);
  const custom_buttons = {};
  const frm = {
    doctype,
    doc: undefined,
    fields_dict: {
      items: {
        grid: {
          add_custom_button(label, click, position = 'bottom') {
            if (arguments.length > 3 || position !== 'bottom') throw new Error('add_custom_button arguments');
            let $btn = custom_buttons[label];
            if (!$btn) {
              const button = document.createElement('button');
              button.type = 'button';
              button.className = 'btn btn-secondary btn-xs btn-custom';
              button.innerHTML = __(label);
              button.addEventListener('click', click);
              grid_buttons.prepend(button);
              $btn = custom_buttons[label] = jq(button);
              $btn.element = button;
            } else {
              $btn.element.classList.remove('hidden');
            }
            return $btn;
          },
        },
      },
    },
    add_child(fieldname, values = {}) {
      if (fieldname !== 'items') throw new Error('no table ' + fieldname);
      const idx = frm.doc.items.length + 1;
      const row = { doctype: doctype + ' Item', name: 'new-row-' + ++counter, idx, ...values };
      frm.doc.items.push(row);
      rows[row.doctype + '/' + row.name] = row;
      calls.push(['add_child', fieldname]);
      return row;
    },
    refresh_field(fieldname) { calls.push(['refresh_field', fieldname]); },
  };
  return frm;
}
window.frappe = {
  listview_settings: {},
  ui: {
    Dialog,
    form: { on(doctype, events) { (handlers[doctype] ??= []).push(events); } },
  },
  model: {
    set_value(doctype, name, fieldname, value) {
      const row = rows[doctype + '/' + name];
      if (!row) throw new Error('set_value: no ' + doctype + ' ' + name);
      row[fieldname] = value;
      calls.push(['set_value', doctype, name, fieldname, value]);
      return Promise.resolve(row);
    },
  },
  set_route(...route) { calls.push(['set_route', ...route]); },
  msgprint(message) { calls.push(['msgprint', message]); },
};
window.standIn = {
  /** A DocType's meta loads: its list or form scripts run (model.js init_doctype, script_manager.js). */
  load(doctype, erpnextListJs, clientScript) {
    if (erpnextListJs) new Function(erpnextListJs)();
    new Function(clientScript)();
  },
  openList(doctype) {
    const toolbar = document.createElement('div');
    toolbar.className = 'page-actions';
    toolbar.dataset.list = doctype;
    document.body.append(toolbar);
    const listview = {
      doctype,
      page: {
        add_inner_button(label, action) {
          const button = document.createElement('button');
          button.className = 'btn btn-default ellipsis';
          button.textContent = label;
          button.addEventListener('click', action);
          toolbar.append(button);
          return button;
        },
      },
    };
    const settings = frappe.listview_settings[doctype];
    if (settings && settings.onload) settings.onload(listview);
  },
  /** Shows a document in its DocType's one form, as Frappe does, and fires refresh. */
  openForm(doc) {
    const frm = (forms[doc.doctype] ??= makeForm(doc.doctype));
    frm.doc = doc;
    for (const row of doc.items) rows[row.doctype + '/' + row.name] = row;
    for (const events of handlers[doc.doctype] ?? []) if (own(events, 'refresh')) events.refresh(frm);
  },
  items(doctype) { return forms[doctype].doc.items.map((row) => ({ name: row.name, item_code: row.item_code })); },
};
`;

// ERPNext's own Item list settings (erpnext/stock/doctype/item/item_list.js sets them; this is their shape).
const ERPNEXT_ITEM_LIST_JS = String.raw`
frappe.listview_settings['Item'] = {
  add_fields: ['item_name', 'stock_uom', 'item_group', 'image', 'has_variants', 'end_of_life', 'disabled'],
  filters: [['disabled', '=', '0']],
  onload() { calls.push(['erpnext item list onload']); },
};
`;

// Browser globals used inside page.evaluate (this program has no DOM library).
declare const window: { calls: unknown[][]; standIn: StandIn };
interface StandIn {
  load(doctype: string, erpnextListJs: string | null, clientScript: string): void;
  openList(doctype: string): void;
  openForm(doc: unknown): void;
  items(doctype: string): Array<{ name: string; item_code?: string }>;
}

describe.skipIf(!CAN_RUN)('Find by photo (ERPNext Client Script) in Chromium', () => {
  let t: TestApp;
  let api: string;
  let desk: Server;
  let deskUrl: string;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let problems: string[] = [];
  let thumbnails: boolean;
  const photos: Record<string, Buffer> = {};
  const uploads: number[] = [];

  beforeAll(async () => {
    desk = createServer((request, response) => {
      if (request.url === '/stand-in.js') {
        response.writeHead(200, { 'content-type': 'text/javascript' }).end(STAND_IN);
      } else if (request.url === '/app') {
        response
          .writeHead(200, { 'content-type': 'text/html' })
          .end(
            '<!doctype html><title>desk</title><link rel="icon" href="data:,">' +
              '<style>.hidden{display:none}</style><script src="/stand-in.js"></script>',
          );
      } else response.writeHead(404).end();
    });
    await new Promise<void>((resolve) => desk.listen(0, '127.0.0.1', resolve));
    deskUrl = `http://127.0.0.1:${(desk.address() as AddressInfo).port}`;
    t = await startTestApp({
      env: { IMAGE_SEARCH_API_KEY: WRITE_KEY, IMAGE_SEARCH_READ_KEY: READ_KEY, CORS_ORIGINS: deskUrl },
    });
    // What reaches the service: the size of each search upload.
    t.app.addHook('onRequest', async (request) => {
      if (request.url === '/search') uploads.push(Number(request.headers['content-length']));
    });
    const catalog: Array<[string, string, string, number]> = [
      ['apple-juice', 'Apple juice 1 l', 'APL-1', 1],
      ['orange-juice', 'Orange juice 1 l', 'ORJ-1', 2],
      ['xss', XSS_NAME, '<b>XSS-1</b>', 3],
      ['hammer', 'Claw hammer', 'HAM-1', 4],
    ];
    for (const [item_id, item_name, item_code, seed] of catalog) {
      const form = await multipart({ item_id, item_name, item_code }, { bytes: await images.jpeg(640, 480, seed) });
      const response = await t.app.inject({
        method: 'POST',
        url: '/ingest',
        payload: form.payload,
        headers: { ...form.headers, 'image-search-api-key': WRITE_KEY },
      });
      expect(response.statusCode).toBe(201);
    }
    thumbnails = t.app.hasRoute({ method: 'GET', url: '/images/:image_id/thumbnail' });
    if (!thumbnails) {
      console.log('NOTE find-by-photo: this service has no GET /images/{id}/thumbnail yet; rows show name and code.');
    }
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    api = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;

    photos.apple = await images.photo(640, 480, 1).resize(500).jpeg({ quality: 70 }).toBuffer();
    photos.orange = await images.photo(640, 480, 2).resize(480).jpeg({ quality: 75 }).toBuffer();
    photos.xss = await images.photo(640, 480, 3).resize(400).jpeg({ quality: 80 }).toBuffer();
    photos.large = await images.photo(4000, 3000, 2).jpeg({ quality: 95 }).toBuffer();
    photos.wall = await sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } })
      .jpeg()
      .toBuffer();

    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    await new Promise((resolve) => desk?.close(resolve));
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    // No console error, exception or dialog (an alert would be the XSS) but the ones a test expects.
    expect(problems).toEqual([]);
    problems = [];
  });

  /** The desk page on `origin`, with the Client Script loaded for `doctype` (twice: metas load again). */
  async function openDesk(origin = deskUrl, script = configured(api, READ_KEY), allow: RegExp[] = []): Promise<Page> {
    context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    const page = await context.newPage();
    page.on('console', (message) => {
      const text = `${message.text()} ${message.location().url}`;
      const thumbnailMissing = !thumbnails && /404/.test(text) && /\/thumbnail\?size=/.test(text);
      if (message.type() === 'error' && !thumbnailMissing && !allow.some((pattern) => pattern.test(text))) {
        problems.push(`console: ${text}`);
      }
    });
    page.on('pageerror', (error) => problems.push(`exception: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.goto(`${origin}/app`);
    for (const [doctype, listJs] of [
      ['Item', ERPNEXT_ITEM_LIST_JS],
      ['Item', ERPNEXT_ITEM_LIST_JS],
      ['Sales Invoice', null],
      ['Sales Invoice', null],
    ] as const) {
      await page.evaluate(([d, l, s]) => window.standIn.load(d, l, s), [doctype, listJs, script] as const);
    }
    return page;
  }

  /** Picks a photo through the dialog's file input; returns the rows' item ids once the answer is shown. */
  async function choosePhoto(page: Page, bytes: Buffer): Promise<string[]> {
    const dialog = page.getByRole('dialog', { name: 'Find by photo' }).last();
    await expect.poll(() => dialog.isVisible()).toBe(true);
    const answered = page.waitForResponse((response) => response.url() === `${api}/search`);
    await dialog.locator('input[type=file]:not([capture])').setInputFiles({
      name: 'photo.jpg',
      mimeType: 'image/jpeg',
      buffer: bytes,
    });
    await answered;
    await expect.poll(() => dialog.locator('.find-by-photo-status').textContent()).not.toBe('Searching…');
    return dialog
      .locator('.find-by-photo-result button')
      .evaluateAll((buttons) =>
        buttons.map((button) => (button as unknown as { dataset: { itemId: string } }).dataset.itemId),
      );
  }

  const calls = (page: Page) => page.evaluate(() => window.calls);

  it('Item list: one button beside ERPNext’s settings; the photo’s item opens; name, code, picture', async () => {
    const page = await openDesk();
    await page.evaluate(() => window.standIn.openList('Item'));
    const button = page.locator('[data-list=Item] button', { hasText: 'Find by photo' });
    expect(await button.count()).toBe(1); // the script ran twice, the button is there once
    expect(await calls(page)).toEqual([['erpnext item list onload']]);

    const searches: Array<Record<string, string>> = [];
    page.on('request', (request) => {
      if (request.url() === `${api}/search`) searches.push(request.headers());
    });
    await button.click();
    const ids = await choosePhoto(page, photos.apple);
    expect(ids[0]).toBe('apple-juice');
    expect(ids.length).toBeGreaterThan(1);
    expect(searches).toHaveLength(1);
    expect(searches[0]['image-search-api-key']).toBe(READ_KEY);

    const dialog = page.getByRole('dialog', { name: 'Find by photo' });
    const first = dialog.locator('.find-by-photo-result button').first();
    expect(await first.locator('.find-by-photo-name').textContent()).toBe('Apple juice 1 l');
    expect(await first.locator('.find-by-photo-code').textContent()).toBe('APL-1');
    expect(await first.locator('.find-by-photo-confidence').textContent()).toMatch(/^\d{1,3} %$/);
    expect(await dialog.locator('.find-by-photo-status').textContent()).not.toBe('');
    const img = first.locator('img');
    expect(await img.getAttribute('alt')).toBe('Apple juice 1 l');
    if (thumbnails) {
      await expect
        .poll(() => img.evaluate((i) => (i as unknown as { naturalWidth: number }).naturalWidth))
        .toBeGreaterThan(0);
      expect(await img.getAttribute('src')).toMatch(/^blob:/);
    } else {
      await expect.poll(() => img.getAttribute('class')).toContain('find-by-photo-missing');
    }

    await first.click();
    expect(await dialog.isVisible()).toBe(false);
    expect((await calls(page)).slice(1)).toEqual([['set_route', 'Form', 'Item', 'apple-juice']]);
  });

  it('Sales Invoice: fills the empty row, else adds one (set_value of item_code); hidden once submitted', async () => {
    const page = await openDesk();
    const doc = (name: string, docstatus: number, codes: string[]) => ({
      doctype: 'Sales Invoice',
      name,
      docstatus,
      items: codes.map((item_code, i) => ({ doctype: 'Sales Invoice Item', name: `${name}-row-${i}`, item_code })),
    });
    const button = page.locator('[data-doctype="Sales Invoice"] .grid-buttons button', { hasText: 'Find by photo' });

    await page.evaluate((d) => window.standIn.openForm(d), doc('SINV-1', 0, ['hammer', '']));
    expect(await button.count()).toBe(1); // two registrations of the script, one handler
    await button.click();
    expect(await choosePhoto(page, photos.orange)).toContain('orange-juice');
    await page.locator('.find-by-photo-result button[data-item-id="orange-juice"]').click();
    await expect
      .poll(() => calls(page))
      .toEqual([
        ['set_value', 'Sales Invoice Item', 'SINV-1-row-1', 'item_code', 'orange-juice'],
        ['refresh_field', 'items'],
      ]);
    expect(await page.evaluate(() => window.standIn.items('Sales Invoice'))).toEqual([
      { name: 'SINV-1-row-0', item_code: 'hammer' },
      { name: 'SINV-1-row-1', item_code: 'orange-juice' },
    ]);

    // No empty row left: a new one. And a 4000×3000 phone photo is shrunk (to 1600×1200) before upload.
    uploads.length = 0;
    await button.click();
    expect((await choosePhoto(page, photos.large))[0]).toBe('orange-juice');
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).toBeLessThan(photos.large.length / 3);
    await page.locator('.find-by-photo-result button').first().click();
    await expect
      .poll(async () => (await calls(page)).slice(2))
      .toEqual([
        ['add_child', 'items'],
        ['set_value', 'Sales Invoice Item', 'new-row-1', 'item_code', 'orange-juice'],
        ['refresh_field', 'items'],
      ]);

    // A submitted invoice in the same form: the button is hidden; a draft again: it is back.
    await page.evaluate((d) => window.standIn.openForm(d), doc('SINV-2', 1, ['hammer']));
    expect(await button.isVisible()).toBe(false);
    await page.evaluate((d) => window.standIn.openForm(d), doc('SINV-3', 0, []));
    expect(await button.isVisible()).toBe(true);
    expect(await button.count()).toBe(1);
    expect(await page.getByRole('dialog', { includeHidden: true }).count()).toBe(1); // one dialog, shown again
  });

  it('names are text, never HTML; the verdict follows the answer; a later photo replaces the rows', async () => {
    const page = await openDesk();
    await page.evaluate(() => window.standIn.openList('Item'));
    await page.locator('[data-list=Item] button', { hasText: 'Find by photo' }).click();
    const dialog = page.getByRole('dialog', { name: 'Find by photo' });
    expect((await choosePhoto(page, photos.xss))[0]).toBe('xss');
    const first = dialog.locator('.find-by-photo-result button').first();
    expect(await first.locator('.find-by-photo-name').textContent()).toBe(XSS_NAME);
    expect(await first.locator('.find-by-photo-code').textContent()).toBe('<b>XSS-1</b>');
    expect(await dialog.locator('.find-by-photo-result b').count()).toBe(0);

    const answered = page.waitForResponse((response) => response.url() === `${api}/search`);
    const rows = choosePhoto(page, photos.wall);
    const answer = (await (await answered).json()) as { match: string; results: unknown[] };
    expect(await rows).toHaveLength(answer.results.length);
    const verdicts: Record<string, string> = {
      confident: 'Best match first.',
      uncertain: 'Not sure: check the pictures.',
      none: 'Nothing in the catalog looks like this photo. The closest items:',
    };
    expect(await dialog.locator('.find-by-photo-status').textContent()).toBe(verdicts[answer.match]);
  });

  /** Opens the Item list's dialog and picks a photo, without waiting for an answer (none may come). */
  async function photoFromItemList(page: Page, bytes: Buffer): Promise<void> {
    await page.evaluate(() => window.standIn.openList('Item'));
    await page.locator('[data-list=Item] button', { hasText: 'Find by photo' }).click();
    await page
      .locator('input[type=file]:not([capture])')
      .setInputFiles({ name: 'photo.jpg', mimeType: 'image/jpeg', buffer: bytes });
  }

  it('says what is wrong: a wrong key, an origin not in CORS_ORIGINS, a service that is down', async () => {
    const wrongKey = await openDesk(deskUrl, configured(api, 'not-the-key'), [/401/]);
    await wrongKey.evaluate(() => window.standIn.openList('Item'));
    await wrongKey.locator('[data-list=Item] button', { hasText: 'Find by photo' }).click();
    expect(await choosePhoto(wrongKey, photos.apple)).toEqual([]);
    const status = () => wrongKey.locator('.find-by-photo-status').textContent();
    expect(await status()).toMatch(/key/i);
    await context!.close();

    // Same page, served from another origin (localhost instead of 127.0.0.1): the browser blocks the answer.
    const elsewhere = await openDesk(deskUrl.replace('127.0.0.1', 'localhost'), configured(api, READ_KEY), [
      /CORS|Failed to fetch|net::ERR_FAILED/,
    ]);
    await photoFromItemList(elsewhere, photos.apple);
    await expect
      .poll(() => elsewhere.locator('.find-by-photo-status').textContent())
      .toContain('cannot be reached (is it up, and is this site');
    await context!.close();

    // The service is down (a port nobody listens on).
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const deadUrl = `http://127.0.0.1:${(closed.address() as AddressInfo).port}`;
    await new Promise((resolve) => closed.close(resolve));
    const down = await openDesk(deskUrl, configured(deadUrl, READ_KEY), [/ERR_CONNECTION_REFUSED/]);
    await photoFromItemList(down, photos.apple);
    await expect
      .poll(() => down.locator('.find-by-photo-status').textContent())
      .toBe(
        `The image search at ${deadUrl} cannot be reached (is it up, and is this site's origin in its CORS_ORIGINS?).`,
      );
    expect(await down.locator('input[type=file][capture=environment][accept="image/*"]').count()).toBe(1);
  });
});
