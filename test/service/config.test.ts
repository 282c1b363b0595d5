import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { withTables } from '../../scripts/dev/readme-tables.js';
import { ConfigError, loadConfig, VARIABLES } from '../../service/src/config.js';
import { ERROR_CODES } from '../../service/src/errors.js';

describe('loadConfig', () => {
  it('has working defaults', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({
      port: 8020,
      host: '127.0.0.1', // no key: this machine only
      modelPath: 'models/efficientnet_b0.onnx',
      dataDir: './data',
      imageStorageDir: 'data/images',
      collection: 'items',
      maxImageBytes: 20 * 1024 * 1024,
      maxTopK: 50,
      urlAllow: [],
      urlHeaders: {},
    });
    expect(config.apiKey).toBeUndefined();
    expect(config.qdrantUrl).toBeUndefined();
  });

  it('reads every variable and derives the image directory from DATA_DIR', () => {
    const config = loadConfig({
      PORT: '9000',
      DATA_DIR: '/srv/data',
      QDRANT_URL: 'http://qdrant:6333/',
      IMAGE_URL_ALLOW: 'erp.internal, 10.0.5.0/24,,',
      IMAGE_URL_HEADERS: '{"Authorization":"token a:b"}',
      IMAGE_SEARCH_API_KEY: 'k',
    });
    expect(config).toMatchObject({
      port: 9000,
      imageStorageDir: '/srv/data/images',
      qdrantUrl: 'http://qdrant:6333',
      urlAllow: ['erp.internal', '10.0.5.0/24'],
      urlHeaders: { Authorization: 'token a:b' },
      apiKey: 'k',
    });
    expect(loadConfig({ IMAGE_STORAGE_DIR: '/mnt/images' }).imageStorageDir).toBe('/mnt/images');
  });

  it('reports every bad variable at once, naming each', () => {
    let error: unknown;
    try {
      loadConfig({
        PORT: 'eighty',
        QDRANT_URL: 'qdrant:6333',
        MAX_TOP_K: '0',
        IMAGE_URL_HEADERS: '[1]',
        LOG_LEVEL: 'loud',
        QDRANT_COLLECTION: 'a/b',
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const message = (error as Error).message;
    for (const name of ['PORT', 'QDRANT_URL', 'MAX_TOP_K', 'IMAGE_URL_HEADERS', 'LOG_LEVEL', 'QDRANT_COLLECTION'])
      expect(message).toContain(name);
    expect(message.split('\n')).toHaveLength(7);
  });
});

describe('README', () => {
  const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');

  it('documents every environment variable with its default', () => {
    const rows = new Map(
      [...readme.matchAll(/^\| `([A-Z0-9_]+)` \| ([^|]*) \|/gm)].map((match) => [match[1], match[2].trim()]),
    );
    for (const variable of Object.values(VARIABLES)) {
      expect(rows.has(variable.env), `${variable.env} missing from the README's configuration table`).toBe(true);
      if ('default' in variable && variable.default !== '') {
        expect(rows.get(variable.env), `${variable.env} default`).toContain(variable.default);
      }
    }
  });

  it('has the configuration and error tables written from their sources (npm run docs:tables)', () => {
    expect(readme).toBe(withTables(readme));
  });

  it('lists every error code of the registry with its status', () => {
    const rows = [...readme.matchAll(/^\| (\d{3}) \| `([a-z_]+)` \|/gm)].map((m) => [m[2], Number(m[1])]);
    expect(Object.fromEntries(rows)).toEqual(
      Object.fromEntries(Object.entries(ERROR_CODES).map(([code, [status]]) => [code, status])),
    );
  });

  it('rejects CORS_ORIGINS that are not origins, and UPLOAD_BUDGET_BYTES below MAX_IMAGE_BYTES', () => {
    expect(loadConfig({ CORS_ORIGINS: 'https://erp.example.com, http://localhost:8000' }).corsOrigins).toEqual([
      'https://erp.example.com',
      'http://localhost:8000',
    ]);
    expect(() => loadConfig({ CORS_ORIGINS: 'https://erp.example.com/app' })).toThrow(/CORS_ORIGINS/);
    expect(() =>
      loadConfig({ UPLOAD_BUDGET_BYTES: String(2 * 1024 * 1024), MAX_IMAGE_BYTES: String(4 * 1024 * 1024) }),
    ).toThrow(/UPLOAD_BUDGET_BYTES .* must be at least MAX_IMAGE_BYTES/);
  });

  it('states the install and test commands that CI runs', () => {
    expect(readme).toContain('npm ci && npm test');
  });
});

describe('IMAGE_URL_ALLOW', () => {
  it('stops the start on an entry the URL fetcher could not use', () => {
    expect(() => loadConfig({ IMAGE_URL_ALLOW: 'erp.internal,10.0.0.0/33' })).toThrow(
      /IMAGE_URL_ALLOW.*10\.0\.0\.0\/33/,
    );
    expect(() => loadConfig({ IMAGE_URL_ALLOW: '*.internal' })).toThrow(/wildcards are not supported/);
  });
});

describe('ERPNext settings', () => {
  const site = { ERPNEXT_URL: 'https://erp.example.com/', ERPNEXT_API_KEY: 'abc123', ERPNEXT_API_SECRET: 'def456' };

  it('reads the site, the key pair, the filters, the webhook secret and the interval', () => {
    const config = loadConfig({
      ...site,
      ERPNEXT_ITEM_FILTERS: '[["Item","disabled","=",0],["item_group","in",["Products"]]]',
      ERPNEXT_WEBHOOK_SECRET: 'w'.repeat(32),
      ERPNEXT_SYNC_INTERVAL: '1h',
    });
    expect(config).toMatchObject({
      erpnextUrl: 'https://erp.example.com',
      erpnextItemFilters: [
        ['Item', 'disabled', '=', 0],
        ['item_group', 'in', ['Products']],
      ],
      erpnextSyncInterval: 3_600_000,
    });
    expect(loadConfig(site).erpnextSyncInterval).toBe(15 * 60_000);
    expect(loadConfig({ ...site, ERPNEXT_SYNC_INTERVAL: '0' }).erpnextSyncInterval).toBe(0);
    expect(loadConfig({ ...site, ERPNEXT_SYNC_INTERVAL: '30s' }).erpnextSyncInterval).toBe(30_000);
    expect(loadConfig({}).erpnextUrl).toBeUndefined();
  });

  it('reports settings that do not belong together, all at once', () => {
    const problems = (env: Record<string, string>) => {
      try {
        loadConfig(env);
        return '';
      } catch (error) {
        expect(error).toBeInstanceOf(ConfigError);
        return (error as Error).message;
      }
    };
    // ERPNEXT_URL alone is fine: the staff page links to ERPNext, and no sync runs.
    expect(problems({ ERPNEXT_URL: 'https://erp.example.com' })).toBe('');
    expect(problems({ ERPNEXT_URL: 'https://erp.example.com', ERPNEXT_API_KEY: 'k' })).toMatch(
      /The ERPNext sync needs both ERPNEXT_API_KEY and ERPNEXT_API_SECRET/,
    );
    expect(problems({ ERPNEXT_URL: 'https://erp.example.com', ERPNEXT_WEBHOOK_SECRET: 'x'.repeat(20) })).toMatch(
      /ERPNEXT_WEBHOOK_SECRET and ERPNEXT_ITEM_FILTERS belong to the ERPNext sync/,
    );
    expect(problems({ ERPNEXT_API_KEY: 'k', ERPNEXT_WEBHOOK_SECRET: 'x'.repeat(20) })).toMatch(/need ERPNEXT_URL/);
    const all = problems({
      ...site,
      ERPNEXT_URL: 'https://erp.example.com/app/item',
      ERPNEXT_API_KEY: 'a:b',
      ERPNEXT_ITEM_FILTERS: '[["item_group","~","x"]]',
      ERPNEXT_WEBHOOK_SECRET: 'short',
      ERPNEXT_SYNC_INTERVAL: '15 minutes',
    });
    expect(all).toMatch(/ERPNEXT_URL must be the site's origin only, such as https:\/\/erp.example.com/);
    expect(all).toMatch(/ERPNEXT_ITEM_FILTERS: condition 1 uses the operator "~"/);
    expect(all).toMatch(/ERPNEXT_SYNC_INTERVAL="15 minutes" is not an interval such as 15m/);
    expect(all).toMatch(/ERPNEXT_API_KEY must not contain a colon/);
    expect(all).toMatch(/ERPNEXT_WEBHOOK_SECRET must have at least 16 characters/);
  });
});
