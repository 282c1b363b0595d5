// The staff page in a real browser: Debian's Chromium driven by playwright-core, against the real service
// listening on loopback (embedded store, the small real ONNX test model, real sharp thumbnails). Photos go
// in through the page's own file input. Skips, saying why, when no Chromium is installed (.ci/run installs
// it). Screenshots go to STAFF_SCREENSHOT_DIR (default: a temp dir); the README's picture is made this way:
//   STAFF_SCREENSHOT_DIR=docs npx vitest run --config test/vitest.config.ts test/web -t contrast
import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { AddressInfo } from 'node:net';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { chromiumFor, launchChromium } from '../support/chromium.js';
import sharp from 'sharp';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import * as images from '../support/images.js';
import { multipart, startTestApp, type TestApp } from '../support/app.js';

const CAN_RUN = chromiumFor('staff page browser tests');

const WRITE_KEY = 'w'.repeat(40);
const READ_KEY = 'r'.repeat(40);
const XSS_NAME = '<img src=x onerror=alert(1)>';
const ERPNEXT = 'https://erp.example.com';

/** 640×480 RGB pixels mixing two test pictures: a photo that looks partly like both items. */
function blend(seedA: number, seedB: number, weightA: number): Promise<Buffer> {
  const [a, b] = [images.photoPixels(640, 480, seedA), images.photoPixels(640, 480, seedB)];
  const mixed = a.map((value, i) => Math.round(value * weightA + b[i]! * (1 - weightA)));
  return sharp(mixed, { raw: { width: 640, height: 480, channels: 3 } })
    .jpeg({ quality: 85 })
    .toBuffer();
}

// Code run inside the page (page.evaluate) uses the browser's globals. This program has no DOM library (it
// would make them look available to the service code too), so they are declared here, for this file only,
// with just what the checks use.
interface El {
  id: string;
  hidden: boolean;
  outerHTML: string;
  textContent: string | null;
  childNodes: Iterable<{ nodeType: number; textContent: string | null }>;
  parentElement: El | null;
  offsetParent: unknown;
  labels?: { length: number } | null;
  complete?: boolean;
  naturalWidth?: number;
  getAttribute(name: string): string | null;
}
declare const document: { activeElement: El | null; cookie: string; querySelectorAll(selector: string): Iterable<El> };
declare const sessionStorage: { getItem(key: string): string | null };
declare function getComputedStyle(element: El): { color: string; backgroundColor: string; outlineStyle: string };

/** A multipart request sent with the write key. */
const asWriter = (form: Awaited<ReturnType<typeof multipart>>) => ({
  ...form,
  headers: { ...form.headers, 'image-search-api-key': WRITE_KEY },
});

describe.skipIf(!CAN_RUN)('the staff page in Chromium', () => {
  let t: TestApp;
  let base: string;
  let browser: Browser;
  let dir: string;
  let shots: string;
  const files: Record<string, string> = {};
  let context: BrowserContext | undefined;
  let problems: string[] = [];

  beforeAll(async () => {
    t = await startTestApp({
      env: { IMAGE_SEARCH_API_KEY: WRITE_KEY, IMAGE_SEARCH_READ_KEY: READ_KEY, ERPNEXT_URL: ERPNEXT },
    });
    // Six catalog items (one per test picture), and staff photos of four of them, as after some use.
    const catalog: Array<[string, string, string, string, number]> = [
      ['apple-juice', 'Apple juice 1 l', 'APL-1', 'Juice', 1],
      ['orange-juice', 'Orange juice 1 l', 'ORJ-1', 'Juice', 2],
      ['xss', XSS_NAME, '<b>XSS-1</b>', 'Tools', 3],
      ['hammer', 'Claw hammer', 'HAM-1', 'Tools', 4],
      ['tape', 'Duct tape', 'TAP-1', 'Tools', 5],
      ['gloves', 'Work gloves', 'GLV-1', 'Tools', 6],
    ];
    for (const [item_id, item_name, item_code, item_group, seed] of catalog) {
      const form = await multipart(
        { item_id, item_name, item_code, item_group },
        { bytes: await images.jpeg(640, 480, seed) },
      );
      const response = await t.app.inject({ method: 'POST', url: '/ingest', ...asWriter(form) });
      expect(response.statusCode).toBe(201);
    }
    for (const [i, itemId] of ['xss', 'hammer', 'tape', 'gloves'].entries()) {
      const form = await multipart({ kind: 'photo' }, { bytes: await blend(60 + i, 3 + i, 0.5) });
      const response = await t.app.inject({ method: 'POST', url: `/items/${itemId}/images`, ...asWriter(form) });
      expect(response.statusCode).toBe(201);
    }
    await t.app.listen({ host: '127.0.0.1', port: 0 });
    base = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}`;

    dir = mkdtempSync(path.join(tmpdir(), 'staff-page-'));
    shots = process.env.STAFF_SCREENSHOT_DIR ?? path.join(dir, 'shots');
    mkdirSync(shots, { recursive: true });
    const photos: Record<string, Buffer> = {
      // The apple juice picture again, smaller and recompressed, as a phone would send it.
      apple: await images.photo(640, 480, 1).resize(500).jpeg({ quality: 70 }).toBuffer(),
      // A grey wall: like nothing in the catalog.
      wall: await sharp({ create: { width: 400, height: 300, channels: 3, background: '#808080' } })
        .jpeg()
        .toBuffer(),
      // Mostly like the apple juice, partly like the orange juice: the orange juice comes second.
      mixed: await blend(1, 2, 0.6),
      // A 4000×3000 phone photo: shrunk in the browser before upload.
      large: await images.photo(4000, 3000, 1).jpeg({ quality: 95 }).toBuffer(),
    };
    for (const [name, bytes] of Object.entries(photos)) {
      files[name] = path.join(dir, `${name}.jpg`);
      writeFileSync(files[name], bytes);
    }
    browser = await launchChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await t?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  afterEach(async () => {
    await context?.close();
    context = undefined;
    // No test may leave a console error, an uncaught exception or a dialog (an alert would be the XSS).
    expect(problems).toEqual([]);
    problems = [];
  });

  /** A fresh browser tab (its own sessionStorage) that records every console error, exception and dialog. */
  async function open(viewport = { width: 1280, height: 900 }): Promise<Page> {
    context = await browser.newContext({ viewport, baseURL: base });
    const page = await context.newPage();
    page.on('console', (message) => {
      // Chrome reports every 401 answer as "Failed to load resource"; the page expects exactly one: asking
      // /session with no key yet (that is how it learns that it must ask for one).
      const location = message.location().url;
      if (message.type() === 'error' && !(message.text().includes('401') && location.endsWith('/session'))) {
        problems.push(`console: ${message.text()} (${location})`);
      }
    });
    page.on('pageerror', (error) => problems.push(`exception: ${error.message}`));
    page.on('dialog', (dialog) => {
      problems.push(`dialog: ${dialog.message()}`);
      void dialog.dismiss();
    });
    await page.goto('/');
    return page;
  }

  async function signIn(page: Page, key: string): Promise<void> {
    await page.getByLabel('Access key').fill(key);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
  }

  /** Searches with a photo through the "Choose an image" input; returns the titles of all result rows. */
  async function searchWith(page: Page, file: string): Promise<string[]> {
    const before = await page.locator('#verdict').getAttribute('data-search');
    await page.locator('#file').setInputFiles(file);
    await expect.poll(() => page.locator('#verdict').getAttribute('data-search')).not.toBe(before);
    // Rows of a `none` answer are behind "Show the closest items anyway": all rows, in rank order.
    return page.locator('#result-list h3, #unlikely-list h3').allTextContents();
  }

  const thumbnailsLoaded = (page: Page, selector: string) =>
    page
      .locator(selector)
      .evaluateAll((imgs) => imgs.map((img) => (img as El).complete === true && (img as El).naturalWidth! > 0));

  it('asks for a key, keeps it in sessionStorage only, and finds the item of a photo with its picture', async () => {
    const page = await open();
    await expect.poll(() => page.getByLabel('Access key').isVisible()).toBe(true);
    await expect.poll(() => page.locator('#app').isVisible()).toBe(false);
    await page.getByLabel('Access key').fill('not-the-key');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await expect.poll(() => page.locator('#status').textContent()).toContain('not accepted');
    await signIn(page, WRITE_KEY);
    expect(await page.evaluate(() => sessionStorage.getItem('image-search-key'))).toBe(WRITE_KEY);
    expect(await page.evaluate(() => document.cookie)).toBe('');
    expect(page.url()).not.toContain(WRITE_KEY);
    expect(await page.locator('#who').textContent()).toBe('Search and add photos');

    const titles = await searchWith(page, files.apple!);
    expect(titles[0]).toBe('Apple juice 1 l');
    expect(await page.locator('#verdict').getAttribute('data-match')).toBe('confident');
    const first = page.locator('#result-list > li').first();
    expect(await first.locator('.meta').textContent()).toBe('Code APL-1 · Group Juice');
    expect(await first.locator('.confidence').textContent()).toMatch(/\d+% likely/);
    await expect.poll(() => thumbnailsLoaded(page, '#result-list img.thumb')).not.toContain(false);
    expect(await first.locator('img.thumb').getAttribute('alt')).toBe('Picture of Apple juice 1 l');
    expect(await first.getByRole('link', { name: 'Open in ERPNext' }).getAttribute('href')).toBe(
      `${ERPNEXT}/app/item/apple-juice`,
    );

    // The key survives a reload of the tab (sessionStorage), and signing out forgets it.
    await page.reload();
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
    await page.getByRole('button', { name: 'Sign out' }).click();
    expect(await page.evaluate(() => sessionStorage.getItem('image-search-key'))).toBeNull();
    await expect.poll(() => page.getByLabel('Access key').isVisible()).toBe(true);
  });

  it('shrinks a large phone photo in the browser before upload, keeping the long side at 1024 px or more', async () => {
    const page = await open();
    await signIn(page, WRITE_KEY);
    const uploads: number[] = [];
    page.on('request', (request) => {
      if (request.url().endsWith('/search')) uploads.push(request.postDataBuffer()?.length ?? 0);
    });
    const titles = await searchWith(page, files.large!);
    expect(titles[0]).toBe('Apple juice 1 l');
    const info = await page.locator('#photo-info').textContent();
    const [, width, height] = /^(\d+) × (\d+) px/.exec(info ?? '') ?? [];
    expect(Math.max(Number(width), Number(height))).toBeGreaterThanOrEqual(1024);
    expect(Math.max(Number(width), Number(height))).toBeLessThan(4000);
    expect(uploads).toHaveLength(1);
    expect(uploads[0]).toBeLessThan(statSync(files.large!).size / 2);
  });

  it('limits a search to one item group', async () => {
    const page = await open();
    await signIn(page, WRITE_KEY);
    expect((await searchWith(page, files.apple!))[0]).toBe('Apple juice 1 l');
    const before = await page.locator('#verdict').getAttribute('data-search');
    await page.getByLabel('Item group').fill('Tools');
    await page.getByLabel('Item group').press('Enter'); // a change of the field searches again
    await expect.poll(() => page.locator('#verdict').getAttribute('data-search')).not.toBe(before);
    const titles = await page.locator('#result-list h3, #unlikely-list h3').allTextContents();
    expect(titles.length).toBeGreaterThan(0);
    expect(titles).not.toContain('Apple juice 1 l');
    const groups = await page.locator('#result-list .meta, #unlikely-list .meta').allTextContents();
    for (const meta of groups) expect(meta).toMatch(/Group Tools$/);
  });

  it('says clearly when nothing matches', async () => {
    const page = await open();
    await signIn(page, WRITE_KEY);
    await searchWith(page, files.wall!);
    expect(await page.locator('#verdict').getAttribute('data-match')).toBe('none');
    expect(await page.locator('#verdict').textContent()).toMatch(/^No match/);
    expect(await page.locator('#result-list > li').count()).toBe(0);
  });

  it('shows item names and codes as text: an item named like HTML runs nothing', async () => {
    const page = await open();
    await signIn(page, WRITE_KEY);
    await page.getByLabel('Item id or code').fill('<b>XSS-1</b>');
    await page.getByRole('button', { name: 'Find' }).click();
    const card = page.locator('#lookup-list > li').first();
    await expect.poll(() => card.locator('h3').textContent()).toBe(XSS_NAME);
    expect(await card.locator('.meta').textContent()).toBe('Code <b>XSS-1</b> · Group Tools');
    await card.getByRole('button', { name: /^Show item/ }).click();
    await expect.poll(() => page.locator('#item-title').textContent()).toBe(XSS_NAME);
    expect(await page.locator('img[src="x"], b').count()).toBe(0);
    await expect.poll(() => thumbnailsLoaded(page, '#item-images img.thumb')).toEqual([true, true]);
  });

  it('teaches: adds the photo to the item found lower down, and the next search puts that item first', async () => {
    const page = await open({ width: 390, height: 844 });
    await signIn(page, WRITE_KEY);
    const before = await searchWith(page, files.mixed!);
    expect(before[0]).toBe('Apple juice 1 l');
    expect(before).toContain('Orange juice 1 l');
    // Unsure answers may list the rows behind "Show the closest items anyway".
    if (await page.locator('#unlikely').isVisible()) await page.getByText('Show the closest items anyway').click();
    await page.getByRole('button', { name: 'Add this photo to this item: Orange juice 1 l' }).click();
    await expect
      .poll(() => page.locator('#status').textContent())
      .toBe('Added the photo to Orange juice 1 l. The next search finds it.');
    const phone = path.join(shots, 'staff-page-phone.png');
    await page.screenshot({ path: phone, fullPage: true });
    expect(statSync(phone).size).toBeGreaterThan(1000);

    const after = await searchWith(page, files.mixed!);
    expect(after[0]).toBe('Orange juice 1 l');
    expect(await page.locator('#verdict').getAttribute('data-match')).not.toBe('none'); // shown as a match

    // The item view lists the new photo; deleting it (two presses) removes it.
    await page.getByRole('button', { name: 'Show item Orange juice 1 l' }).first().click();
    const tiles = page.locator('#item-images > li');
    await expect.poll(() => tiles.count()).toBe(2);
    expect(await tiles.nth(1).locator('strong').textContent()).toBe('Photo by staff');
    await expect.poll(() => thumbnailsLoaded(page, '#item-images img.thumb')).toEqual([true, true]);
    const remove = tiles.nth(1).getByRole('button', { name: 'Delete this photo by staff' });
    await remove.click();
    expect(await remove.textContent()).toBe('Press again to delete');
    await remove.click();
    await expect.poll(() => tiles.count()).toBe(1);
    expect(await page.locator('#status').textContent()).toBe('Image deleted.');
    const item = (
      await t.app.inject({ url: '/items/orange-juice', headers: { 'image-search-api-key': READ_KEY } })
    ).json();
    expect(item.images.map((image: { kind: string }) => image.kind)).toEqual(['catalog']);
  });

  it('with a read key: searches and shows items, but offers no teach or delete action', async () => {
    const page = await open();
    await signIn(page, READ_KEY);
    expect(await page.locator('#who').textContent()).toBe('Search only (read key)');
    const titles = await searchWith(page, files.apple!);
    expect(titles[0]).toBe('Apple juice 1 l');
    expect(await page.getByRole('button', { name: /Add this photo/ }).count()).toBe(0);
    await page.locator('#result-list').getByRole('button', { name: 'Show item Apple juice 1 l' }).click();
    await expect.poll(() => page.locator('#item-images > li').count()).toBe(1);
    expect(await page.getByRole('button', { name: /Delete/ }).count()).toBe(0);
    await expect.poll(() => thumbnailsLoaded(page, '#item-images img.thumb')).toEqual([true]);
  });

  it('is usable by keyboard alone, with a visible focus ring and labelled controls', async () => {
    const page = await open();
    // The key field has the focus once the page knows it needs a key.
    await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('key');
    await page.keyboard.type(WRITE_KEY);
    await page.keyboard.press('Enter');
    await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
    // Tab to the "Take a photo" input: its label shows the focus ring.
    const focused: string[] = [];
    for (let i = 0; i < 8 && !focused.includes('camera'); i++) {
      await page.keyboard.press('Tab');
      focused.push(await page.evaluate(() => document.activeElement?.id ?? ''));
    }
    expect(focused).toContain('camera');
    const outline = await page.locator('label[for="camera"]').evaluate((label) => getComputedStyle(label).outlineStyle);
    expect(outline).toBe('solid');
    // Every input, button and link has an accessible name; every image has alt text.
    const unnamed = await page.evaluate(() =>
      [...document.querySelectorAll('input, button, a, select')]
        .filter((element) => !(element as El).hidden)
        .filter((element) => {
          const input = element as El;
          const labelled = input.labels && input.labels.length > 0;
          return !labelled && !element.getAttribute('aria-label') && !element.textContent?.trim();
        })
        .map((element) => element.outerHTML),
    );
    expect(unnamed).toEqual([]);
    expect(await page.locator('img:not([alt])').count()).toBe(0);
  });

  it('keeps text contrast at 4.5:1 or more', async () => {
    const page = await open();
    await signIn(page, WRITE_KEY);
    await searchWith(page, files.apple!);
    await expect.poll(() => thumbnailsLoaded(page, 'img.thumb')).not.toContain(false);
    const worst = await page.evaluate(() => {
      const rgb = (colour: string) => (colour.match(/[\d.]+/g) ?? []).slice(0, 4).map(Number);
      const luminance = ([r, g, b]: number[]) => {
        const [lr, lg, lb] = [r!, g!, b!].map((c) => {
          const s = c / 255;
          return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
        });
        return 0.2126 * lr! + 0.7152 * lg! + 0.0722 * lb!;
      };
      /** The first opaque background behind an element. */
      const background = (element: El | null): number[] => {
        for (let e = element; e; e = e.parentElement) {
          const colour = rgb(getComputedStyle(e).backgroundColor);
          if (colour.length === 3 || colour[3] === 1) return colour.slice(0, 3);
        }
        return [255, 255, 255];
      };
      const results: Array<{ text: string; ratio: number }> = [];
      for (const element of document.querySelectorAll('body *')) {
        const own = [...element.childNodes].some((node) => node.nodeType === 3 && node.textContent?.trim());
        if (!own || !(element as El).offsetParent) continue;
        const [a, b] = [luminance(rgb(getComputedStyle(element).color)), luminance(background(element))];
        const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
        results.push({ text: element.textContent!.trim().slice(0, 40), ratio: Math.round(ratio * 100) / 100 });
      }
      return results.sort((x, y) => x.ratio - y.ratio).slice(0, 3);
    });
    expect(worst.length).toBeGreaterThan(0);
    expect(worst[0]!.ratio, JSON.stringify(worst)).toBeGreaterThanOrEqual(4.5);
    // The README's picture (docs/staff-page.png): a palette PNG, a third of the size.
    const desktop = path.join(shots, 'staff-page.png');
    await sharp(await page.screenshot())
      .png({ palette: true, quality: 90, compressionLevel: 9 })
      .toFile(desktop);
    expect(statSync(desktop).size).toBeGreaterThan(1000);
  });

  it('works without signing in when the server has no key', async () => {
    const open_ = await startTestApp();
    try {
      await open_.app.listen({ host: '127.0.0.1', port: 0 });
      const page = await open();
      await page.goto(`http://127.0.0.1:${(open_.app.server.address() as AddressInfo).port}/`);
      await expect.poll(() => page.locator('#app').isVisible()).toBe(true);
      expect(await page.getByLabel('Access key').isVisible()).toBe(false);
      expect(await page.getByRole('button', { name: 'Sign out' }).isVisible()).toBe(false);
    } finally {
      await context?.close();
      context = undefined;
      await open_.close();
    }
  });
});
