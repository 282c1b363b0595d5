// No log level prints a key or token: at trace level @fastify/multipart logs its busboy options (the
// request headers with them), the request serializer logs headers, and our own messages might quote
// configuration. The root logger redacts known paths and scrubs every configured secret from each line.
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { buildApp } from '../../service/src/app.js';
import { createLogger } from '../../service/src/log.js';
import * as images from '../support/images.js';
import { multipart, startTestApp } from '../support/app.js';

const API_KEY = 'api-key-that-must-never-be-logged';
const READ_KEY = 'read-key-that-must-never-be-logged';
const TOKEN = 'token abc123:erpnext-secret-in-a-header';

describe('logging', () => {
  it('at LOG_LEVEL=trace, no line contains a key or a configured header secret', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const env = {
      IMAGE_SEARCH_API_KEY: API_KEY,
      IMAGE_SEARCH_READ_KEY: READ_KEY,
      IMAGE_URL_HEADERS: JSON.stringify({ Authorization: TOKEN }),
      LOG_LEVEL: 'trace',
    };
    const t = await startTestApp({ env });
    const logger = createLogger({
      level: 'trace',
      secrets: [API_KEY, READ_KEY, TOKEN],
      destination,
    });
    const app = await buildApp({ config: t.config, catalog: t.catalog, storeKind: 'embedded', logger });
    try {
      const form = await multipart({ item_id: 'logged' }, { bytes: await images.jpeg(80, 60, 1) });
      for (const key of [API_KEY, READ_KEY, 'a-wrong-key']) {
        await app.inject({
          method: 'POST',
          url: '/ingest',
          headers: { ...form.headers, 'image-search-api-key': key },
          payload: form.payload,
        });
        await app.inject({
          method: 'GET',
          url: '/items/logged',
          headers: { 'image-search-api-key': key, authorization: TOKEN },
        });
      }
      logger.info(
        { config: { apiKey: API_KEY, urlHeaders: { Authorization: TOKEN } } },
        `a message quoting ${READ_KEY}`,
      );
      const all = lines.join('');
      expect(lines.length).toBeGreaterThan(10);
      expect(all).toMatch(/busboy|multipart/i); // the trace lines that used to leak are there...
      for (const secret of [API_KEY, READ_KEY, TOKEN, 'erpnext-secret-in-a-header']) expect(all).not.toContain(secret);
      expect(all).toContain('[redacted]'); // ...with the values replaced
    } finally {
      await app.close();
      await t.close();
    }
  });
});
