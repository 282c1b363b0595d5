// The OpenAPI document: valid OpenAPI 3 (checked by a real validator), every registered route in it with a
// summary, tags and an operationId, each error status listing its codes from the registry, the API key as a
// declared security scheme, and the multipart forms as request bodies. /docs renders from local assets.
import { Validator } from '@seriousme/openapi-schema-validator';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../service/src/errors.js';
import { startTestApp, type TestApp } from '../../support/app.js';

let t: TestApp;
interface Operation {
  operationId?: string;
  summary?: string;
  tags?: string[];
  security?: unknown[];
  requestBody?: { content: Record<string, { schema: { properties: Record<string, unknown> } }> };
  responses: Record<
    string,
    {
      description: string;
      content?: Record<
        string,
        { schema: { properties?: { error?: { enum?: string[]; anyOf?: Array<{ const?: string; enum?: string[] }> } } } }
      >;
    }
  >;
}
let doc: { paths: Record<string, Record<string, Operation>>; components: { securitySchemes: Record<string, unknown> } };

beforeAll(async () => {
  t = await startTestApp({ env: { IMAGE_SEARCH_API_KEY: 'k'.repeat(20) } });
  const response = await t.app.inject({ method: 'GET', url: '/openapi.json' });
  expect(response.statusCode).toBe(200);
  doc = response.json();
});
afterAll(() => t.close());

const codesIn = (schema: {
  properties?: { error?: { enum?: string[]; anyOf?: Array<{ const?: string; enum?: string[] }> } };
}) => {
  const error = schema.properties?.error;
  return error?.enum ?? (error?.anyOf ?? []).flatMap((branch) => branch.enum ?? (branch.const ? [branch.const] : []));
};

describe('GET /openapi.json', () => {
  it('is a valid OpenAPI 3 document', async () => {
    const result = await new Validator().validate(doc as unknown as Record<string, unknown>);
    expect(result.errors ?? []).toEqual([]);
    expect(result.valid).toBe(true);
  });

  it('lists every route (but its own and the staff page files) with summary, tags and a unique operationId', () => {
    const seen = new Set<string>();
    const pageFiles = t.app.routeTable.filter((route) => route.schema?.hide && route.config?.access === 'none');
    expect(pageFiles.map((route) => route.url)).toEqual(expect.arrayContaining(['/', '/index.html', '/favicon.ico']));
    for (const route of t.app.routeTable) {
      for (const method of [route.method].flat()) {
        if (method === 'HEAD' || route.url.startsWith('/docs') || route.url === '/openapi.json') continue;
        if (pageFiles.includes(route)) continue;
        const path = route.url.replace(/:([a-z_]+)/g, '{$1}');
        const operation = doc.paths[path]?.[method.toLowerCase()];
        expect(operation, `${method} ${route.url}`).toBeDefined();
        expect(operation!.summary, `${method} ${path}`).toBeTruthy();
        expect(operation!.tags?.length).toBeGreaterThan(0);
        expect(seen.has(operation!.operationId!)).toBe(false);
        seen.add(operation!.operationId!);
      }
    }
    expect(seen.size).toBeGreaterThanOrEqual(10);
  });

  it('documents each error answer with its codes, all from the registry, at their status', () => {
    for (const [path, operations] of Object.entries(doc.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const errorStatuses = Object.keys(operation.responses).filter((status) => Number(status) >= 400);
        expect(errorStatuses, `${method} ${path}`).toContain('500');
        for (const status of errorStatuses) {
          const body = operation.responses[status]!;
          const codes = codesIn(body.content!['application/json']!.schema);
          expect(codes.length, `${method} ${path} ${status}`).toBeGreaterThan(0);
          for (const code of codes) {
            expect(ERROR_CODES[code as keyof typeof ERROR_CODES]?.[0], `${code}`).toBe(Number(status));
            expect(body.description).toContain(code);
          }
        }
      }
    }
    const ingest = doc.paths['/ingest']!.post!;
    expect(codesIn(ingest.responses['409']!.content!['application/json']!.schema)).toEqual(['item_exists']);
    expect(codesIn(ingest.responses['401']!.content!['application/json']!.schema)).toEqual(['unauthorized']);
    expect(codesIn(ingest.responses['403']!.content!['application/json']!.schema)).toEqual(['forbidden']);
    expect(doc.paths['/search']!.post!.responses['403']).toBeUndefined(); // read route: no forbidden
  });

  it('declares the API key as a security scheme, used by every route that needs one', () => {
    expect(doc.components.securitySchemes.apiKey).toMatchObject({
      type: 'apiKey',
      in: 'header',
      name: 'Image-Search-Api-Key',
    });
    expect(doc.paths['/search']!.post!.security).toEqual([{ apiKey: [] }]);
    expect(doc.paths['/health']!.get!.security).toEqual([]);
  });

  it('shows the multipart forms, file included', () => {
    const form = doc.paths['/ingest']!.post!.requestBody!.content['multipart/form-data']!.schema;
    expect(Object.keys(form.properties).sort()).toEqual(
      ['brand', 'disabled', 'file', 'image_url', 'item_code', 'item_group', 'item_id', 'item_name', 'kind'].sort(),
    );
    expect(
      doc.paths['/search']!.post!.requestBody!.content['multipart/form-data']!.schema.properties.top_k,
    ).toMatchObject({
      type: 'integer',
      minimum: 1,
    });
  });
});

describe('GET /docs', () => {
  it('renders the reference from the package, with no outside script', async () => {
    const page = await t.app.inject({ method: 'GET', url: '/docs/' });
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    const sources = [...page.body.matchAll(/(?:src|href)="([^"]+)"/g)].map((m) => m[1]!);
    expect(sources.length).toBeGreaterThan(0);
    for (const source of sources) {
      expect(source).not.toMatch(/^(https?:)?\/\//);
      const asset = await t.app.inject({ method: 'GET', url: new URL(source, 'http://x/docs/').pathname });
      expect(asset.statusCode, source).toBe(200);
    }
  });
});
