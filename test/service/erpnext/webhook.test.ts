// ERPNext webhooks over real HTTP: the Frappe double sends them exactly as Frappe's enqueue_webhook does (body
// json.dumps(data), signature base64(HMAC-SHA256(secret, body)), no Content-Type), to the real API listening on
// loopback, which re-reads the Item from the double and reconciles it with the real catalog in the background.
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Validator } from '@seriousme/openapi-schema-validator';
import { Embedder } from '../../../service/src/embedding/embedder.js';
import { signFrappeWebhook } from '../../../service/src/erpnext/signature.js';
import { ItemQueue, itemNameOf } from '../../../service/src/erpnext/webhook.js';
import type { TestApp } from '../../support/app.js';
import { seedItem, startWithErpNext } from '../../support/erpnext-seed.js';
import { FrappeDouble, type WebhookRequest } from '../../support/frappe-double.js';

const SECRET = 'webhook-secret-0123456789abcdef';

let double: FrappeDouble;
let t: TestApp;
let url: string;

async function start(env: Record<string, string> = {}) {
  ({ double, t } = await startWithErpNext({
    env: { ERPNEXT_WEBHOOK_SECRET: SECRET, ...env },
    erpnext: { client: { retry: { retries: 2, minDelayMs: 1, maxDelayMs: 5 } } },
  }));
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  url = `http://127.0.0.1:${(t.app.server.address() as AddressInfo).port}/webhooks/erpnext`;
}

afterEach(async () => {
  vi.restoreAllMocks();
  await t?.close();
  await double?.close();
  double?.assertNoViolations();
});

const webhook = (name: string, options: Partial<WebhookRequest> = {}) =>
  double.sendWebhook({ url, data: { name }, secret: SECRET, ...options });
const itemReads = (name: string) =>
  double.requestsTo('/api/resource/Item').filter((r) => (r.query.filters ?? '').includes(JSON.stringify(name))).length;
const imagesOf = (itemId: string) => t.catalog.item(itemId).catch(() => []);

describe('POST /webhooks/erpnext', () => {
  it('makes a new Item searchable within seconds of a signed webhook, answering 202 at once', async () => {
    await start();
    const item = await seedItem(double, 'NEW-1', 2, { item_group: 'Products' });
    const sent = performance.now();
    const answer = await webhook('NEW-1');
    const answeredMs = performance.now() - sent;
    expect(answer.status).toBe(202);
    expect(JSON.parse(answer.body)).toEqual({ item_id: 'NEW-1', queued: true });
    expect(answer.sentHeaders['Content-Type']).toBeUndefined(); // as Frappe sends it
    expect(answeredMs).toBeLessThan(1000);
    await vi.waitFor(
      async () => {
        const found = await t.catalog.search(item.pictures[1], { limit: 1, minConfidence: 0 });
        expect(found.results[0]?.record.item_id).toBe('NEW-1');
      },
      { timeout: 5000, interval: 50 },
    );
    const searchableMs = performance.now() - sent;
    expect(searchableMs).toBeLessThan(5000);
    expect((await t.catalog.item('NEW-1')).map((i) => i.source_ref).sort()).toEqual([...item.urls].sort());
  });

  it('refuses an unsigned, a wrongly signed and a tampered request with 401, and changes nothing', async () => {
    await start();
    await seedItem(double, 'NEW-1', 1);
    const unsigned = await webhook('NEW-1', { secret: undefined });
    expect(unsigned.status).toBe(401);
    expect(JSON.parse(unsigned.body)).toMatchObject({ error: 'invalid_signature' });
    expect((await webhook('NEW-1', { secret: 'another-secret-0123456789' })).status).toBe(401);
    // A valid signature, of another body.
    const tampered = await fetch(url, {
      method: 'POST',
      body: '{"name": "NEW-1"}',
      headers: { 'x-frappe-webhook-signature': signFrappeWebhook(SECRET, '{"name": "OTHER"}') },
    });
    expect(tampered.status).toBe(401);
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(itemReads('NEW-1')).toBe(0); // nothing was even asked of ERPNext for it
    expect(await imagesOf('NEW-1')).toEqual([]);
  });

  it('applies a replay once: the same request again stores and embeds nothing', async () => {
    await start();
    await seedItem(double, 'NEW-1', 3);
    expect((await webhook('NEW-1')).status).toBe(202);
    await vi.waitFor(async () => expect(await imagesOf('NEW-1')).toHaveLength(3), { timeout: 5000 });
    const embeds = vi.spyOn(Embedder.prototype, 'embed');
    const before = await imagesOf('NEW-1');
    for (let i = 0; i < 3; i++) expect((await webhook('NEW-1')).status).toBe(202);
    // The first replay runs again; the others merge into it or run once more after it.
    await vi.waitFor(() => expect(itemReads('NEW-1')).toBeGreaterThanOrEqual(3), { timeout: 5000 });
    await new Promise((resolve) => setTimeout(resolve, 300));
    expect(embeds).not.toHaveBeenCalled();
    expect(await imagesOf('NEW-1')).toEqual(before);
  });

  it('takes a burst: every webhook answered at once, every Item applied, at most one queued run per Item', async () => {
    await start();
    const names = Array.from({ length: 30 }, (_, i) => `BURST-${i}`);
    for (const name of names) await seedItem(double, name, 1 + (name.length % 2));
    const started = performance.now();
    const answers = await Promise.all([...names, ...names].map((name) => webhook(name)));
    expect(answers.every((answer) => answer.status === 202)).toBe(true);
    expect(performance.now() - started).toBeLessThan(5000); // Frappe's timeout, for all 60 together
    await vi.waitFor(
      async () => {
        for (const name of names) expect((await imagesOf(name)).length, name).toBeGreaterThan(0);
      },
      { timeout: 15_000, interval: 100 },
    );
    for (const name of names) {
      // Each name arrived twice: merged while waiting, or run once more after the first run (never more).
      expect(itemReads(name), name).toBeLessThanOrEqual(2);
      const images = await imagesOf(name);
      expect(new Set(images.map((i) => i.source_ref)).size).toBe(images.length);
    }
  });

  it('follows on_update (fields, no re-embedding) and on_trash (the Item removed)', async () => {
    await start();
    await seedItem(double, 'ITEM-1', 2);
    await webhook('ITEM-1');
    await vi.waitFor(async () => expect(await imagesOf('ITEM-1')).toHaveLength(2), { timeout: 5000 });
    const embeds = vi.spyOn(Embedder.prototype, 'embed');
    double.updateItem('ITEM-1', { item_name: 'Better name', brand: 'Acme' });
    await webhook('ITEM-1');
    await vi.waitFor(async () => expect((await imagesOf('ITEM-1'))[0]?.item_name).toBe('Better name'), {
      timeout: 5000,
    });
    expect(embeds).not.toHaveBeenCalled();
    double.deleteItem('ITEM-1');
    await webhook('ITEM-1');
    await vi.waitFor(async () => expect(await imagesOf('ITEM-1')).toEqual([]), { timeout: 5000 });
  });

  it('reads any Content-Type as the raw body; 400 for a body without a name, 413 for a large one', async () => {
    await start();
    await seedItem(double, 'TYPED', 1);
    const typed = await webhook('TYPED', { headers: { 'Content-Type': 'application/json' } });
    expect(typed.status).toBe(202);
    const form = await webhook('TYPED', { headers: { 'Content-Type': 'application/x-www-form-urlencoded' } });
    expect(form.status).toBe(202);
    await vi.waitFor(async () => expect(await imagesOf('TYPED')).toHaveLength(1), { timeout: 5000 });

    const nameless = await double.sendWebhook({ url, data: { doctype: 'Item' }, secret: SECRET });
    expect(nameless.status).toBe(400);
    expect(JSON.parse(nameless.body).message).toContain('{"name": "{{ doc.name }}"}');
    const large = await double.sendWebhook({ url, data: { name: 'x', pad: 'y'.repeat(70 * 1024) }, secret: SECRET });
    expect(large.status).toBe(413);
    expect(JSON.parse(large.body)).toMatchObject({ error: 'request_too_large' });
  });

  it('is documented in the OpenAPI document, signed and without an API key', async () => {
    await start({ IMAGE_SEARCH_API_KEY: 'k'.repeat(32) });
    const doc = (await t.app.inject({ method: 'GET', url: '/openapi.json' })).json();
    expect((await new Validator().validate(doc)).valid).toBe(true);
    const operation = doc.paths['/webhooks/erpnext'].post;
    expect(operation.security).toEqual([]);
    expect(Object.keys(operation.responses).sort()).toEqual(['202', '400', '401', '413', '500']);
    expect(operation.responses['401'].description).toContain('invalid_signature');
    expect(operation.requestBody.content['application/json'].schema.properties.name).toBeDefined();
    // The API key is not what protects it: with the key and no signature it is still refused.
    const keyed = await t.app.inject({
      method: 'POST',
      url: '/webhooks/erpnext',
      payload: '{"name":"x"}',
      headers: { 'image-search-api-key': 'k'.repeat(32) },
    });
    expect(keyed.statusCode).toBe(401);
  });

  it('does not exist without ERPNEXT_WEBHOOK_SECRET', async () => {
    await start({ ERPNEXT_WEBHOOK_SECRET: '' });
    expect((await webhook('X')).status).toBe(404);
  });

  it('does not exist with ERPNEXT_URL alone (the staff page links to ERPNext, nothing is synced)', async () => {
    await start({ ERPNEXT_API_KEY: '', ERPNEXT_API_SECRET: '', ERPNEXT_WEBHOOK_SECRET: '' });
    expect(t.config.erpnextUrl).toBe(double.url);
    expect((await webhook('X')).status).toBe(404);
    expect(double.requests).toEqual([]);
  });
});

describe('itemNameOf', () => {
  it('takes the name from the JSON body and explains the template otherwise', () => {
    expect(itemNameOf(Buffer.from('{"name": "ITEM/1 \\u00e9"}'))).toBe('ITEM/1 é');
    expect(() => itemNameOf(Buffer.from('name=x'))).toThrow(/not JSON.*\{"name": "\{\{ doc.name \}\}"\}/);
    expect(() => itemNameOf(Buffer.from('{"name": ""}'))).toThrow(/no Item "name"/);
    expect(() => itemNameOf(Buffer.from(JSON.stringify({ name: 'x'.repeat(141) })))).toThrow(/1-140/);
  });
});

describe('ItemQueue', () => {
  const log = { info: () => {}, warn: () => {} };

  it('runs one job per item at a time, merges waiting names, runs again a name that came meanwhile', async () => {
    const runs: string[] = [];
    const gates = new Map<string, () => void>();
    const queue = new ItemQueue(
      (name) => {
        runs.push(name);
        return new Promise<void>((resolve) => gates.set(name, resolve));
      },
      log,
      1,
    );
    expect(queue.push('A')).toBe('queued'); // starts
    expect(queue.push('B')).toBe('queued'); // waits
    expect(queue.push('B')).toBe('merged');
    expect(queue.push('A')).toBe('merged'); // A is running: once more afterwards
    expect(runs).toEqual(['A']);
    gates.get('A')!();
    await vi.waitFor(() => expect(runs).toEqual(['A', 'B']));
    gates.get('B')!();
    await vi.waitFor(() => expect(runs).toEqual(['A', 'B', 'A']));
    gates.get('A')!();
    await queue.idle();
    expect(runs).toEqual(['A', 'B', 'A']);
  });

  it('logs a failed job and carries on', async () => {
    const warnings: string[] = [];
    const queue = new ItemQueue(
      async (name) => {
        if (name === 'bad') throw new Error('ERPNext is down');
      },
      { info: () => {}, warn: (message) => warnings.push(message) },
    );
    queue.push('bad');
    queue.push('good');
    await queue.idle();
    expect(warnings).toEqual([
      expect.stringMatching(/"bad" could not be applied now \(ERPNext is down\).*next scheduled/),
    ]);
  });

  it('aborts running jobs on close and takes no more', async () => {
    let aborted = false;
    const queue = new ItemQueue(
      (_name, signal) =>
        new Promise<void>((resolve) =>
          signal.addEventListener('abort', () => {
            aborted = true;
            resolve();
          }),
        ),
      log,
    );
    queue.push('A');
    await queue.close();
    expect(aborted).toBe(true);
    expect(queue.push('B')).toBe('dropped');
  });
});
