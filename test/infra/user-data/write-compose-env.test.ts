// write-compose-env.sh run for real with bash against a strict stand-in for the AWS CLI, fed with deployment.env
// files written by hand and with the one the synthesized user data writes (the contract between the two).
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { HEREDOC_END } from '../../../infra/constructs/boot-user-data.js';
import { cfnText, resourcesOfType, synth } from '../synth.js';
import { runScript } from './run-script.js';

const arn = (name: string) => `arn:aws:secretsmanager:eu-central-1:123456789012:secret:${name}-AbCdEf`;
const API = arn('api');
const READ = arn('read');
const QDRANT = arn('qdrant');
const ERP_KEY = arn('erp-key');
const ERP_SECRET = arn('erp-secret');
const ERP_HOOK = arn('erp-hook');
const VOLUME = 'vol-0123456789abcdef0';
// What the real CLI prints for a secret that exists but has no value yet (no AWSCURRENT version).
const NO_VALUE =
  'An error occurred (ResourceNotFoundException) when calling the GetSecretValue operation: Secrets Manager ' +
  "can't find the specified secret value for staging label: AWSCURRENT";

/**
 * How Compose reads a single-quoted .env value (compose-spec/compose-go dotenv/parser.go, extractVarValue): up to
 * the first quote not preceded by a backslash, quotes trimmed, nothing expanded. Unterminated → an error.
 */
function composeSingleQuoted(line: string): string {
  const raw = line.slice(line.indexOf('=') + 1);
  expect(raw.startsWith("'"), line).toBe(true);
  for (let i = 1; i < raw.length; i++) {
    if (raw[i] === "'" && raw[i - 1] !== '\\') return raw.slice(0, i).replace(/^'+|'+$/g, '');
  }
  throw new Error(`compose would refuse the unterminated quoted value in ${line}`);
}

describe('write-compose-env.sh', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'env-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /**
   * A strict stand-in for the AWS CLI: answers only the exact get-secret-value calls the script must make, with
   * the value, or with the real error text for a secret without value (`null`). Anything else fails loudly.
   */
  const stubAws = (secrets: Record<string, string | null>) => {
    const cases = Object.entries(secrets)
      .map(([id, value]) => {
        const call =
          `secretsmanager get-secret-value --region eu-central-1 --secret-id ${id} ` +
          '--query SecretString --output text';
        const answer = value === null ? `echo "${NO_VALUE}" >&2; exit 254` : `cat <<'VALUE_END'\n${value}\nVALUE_END`;
        return `  "${call}")\n${answer}\n  ;;`;
      })
      .join('\n');
    writeFileSync(
      path.join(dir, 'aws'),
      `#!/bin/bash\ncase "$*" in\n${cases}\n  *) echo "unexpected aws call: $*" >&2; exit 254 ;;\nesac\n`,
      { mode: 0o755 },
    );
    return { PATH: `${dir}:${process.env.PATH}` };
  };
  const deployment = (lines: string[]) => {
    const file = path.join(dir, 'deployment.env');
    writeFileSync(file, lines.join('\n') + '\n');
    return file;
  };
  const BASE = [
    `VOLUME_ID=${VOLUME}`,
    `BACKUP_SCHEDULE=*-*-* 02:30:00`,
    `SECRET_IMAGE_SEARCH_API_KEY=${API}`,
    `SECRET_QDRANT_API_KEY=${QDRANT}`,
  ];
  const write = (env: NodeJS.ProcessEnv, lines: string[], extra?: string) =>
    runScript(
      'write-compose-env.sh',
      [path.join(dir, '.env'), 'eu-central-1', deployment(lines), ...(extra ? [extra] : [])],
      env,
    );
  const envLines = () =>
    readFileSync(path.join(dir, '.env'), 'utf8')
      .split('\n')
      .filter((line) => line && !line.startsWith('#'));
  const noTempFiles = () => expect(readdirSync(dir).filter((name) => name.startsWith('.env.'))).toEqual([]);

  it('writes the secrets, the settings and the deployment values into a root-only file, extra lines last', () => {
    const extra = path.join(dir, 'extra.env');
    writeFileSync(extra, 'IMAGE_URL_ALLOW=erp.internal\n');
    const aws = stubAws({
      [API]: 'a'.repeat(48),
      [READ]: 'r'.repeat(48),
      [QDRANT]: 'Q1w2e3r4t5y6u7i8o9p0',
      [ERP_KEY]: '0123456789abcde',
      [ERP_SECRET]: 'fedcba987654321',
      [ERP_HOOK]: 'a webhook secret with $HOME, # and "quotes"',
    });
    const run = write(
      aws,
      [
        ...BASE,
        `SECRET_IMAGE_SEARCH_READ_KEY=${READ}`,
        `OPERATOR_SECRET_ERPNEXT_API_KEY=${ERP_KEY}`,
        `OPERATOR_SECRET_ERPNEXT_API_SECRET=${ERP_SECRET}`,
        `OPERATOR_SECRET_ERPNEXT_WEBHOOK_SECRET=${ERP_HOOK}`,
        'SETTING_ERPNEXT_URL=https://erp.example.com',
        'SETTING_ERPNEXT_ITEM_FILTERS=[["Item","item_name","like","%it\\u0027s%"]]',
        'SETTING_MODEL_PATH=/data/models/mobilenet_v3.onnx',
      ],
      extra,
    );
    expect(run.status, run.stderr).toBe(0);
    expect(envLines()).toEqual([
      'COMPOSE_PROJECT_NAME=erp-image-search',
      'DATA_DIR=/data',
      'AWS_REGION=eu-central-1',
      `DATA_VOLUME_ID=${VOLUME}`,
      `IMAGE_SEARCH_API_KEY=${'a'.repeat(48)}`,
      'QDRANT_API_KEY=Q1w2e3r4t5y6u7i8o9p0',
      `IMAGE_SEARCH_READ_KEY=${'r'.repeat(48)}`,
      // Single-quoted: compose takes these literally ($HOME stays $HOME, # is no comment).
      "ERPNEXT_API_KEY='0123456789abcde'",
      "ERPNEXT_API_SECRET='fedcba987654321'",
      `ERPNEXT_WEBHOOK_SECRET='a webhook secret with $HOME, # and "quotes"'`,
      "ERPNEXT_URL='https://erp.example.com'",
      `ERPNEXT_ITEM_FILTERS='[["Item","item_name","like","%it\\u0027s%"]]'`,
      "MODEL_PATH='/data/models/mobilenet_v3.onnx'",
      'IMAGE_URL_ALLOW=erp.internal',
    ]);
    const quoted = envLines().filter((line) => line.includes("='"));
    expect(quoted.map(composeSingleQuoted)).toEqual([
      '0123456789abcde',
      'fedcba987654321',
      'a webhook secret with $HOME, # and "quotes"',
      'https://erp.example.com',
      '[["Item","item_name","like","%it\\u0027s%"]]',
      '/data/models/mobilenet_v3.onnx',
    ]);
    expect(() => composeSingleQuoted("X='ends in a backslash\\'")).toThrow(/unterminated/); // hence refused
    const stat = statSync(path.join(dir, '.env'));
    expect((stat.mode & 0o777).toString(8)).toBe('600');
    if (process.getuid?.() === 0) expect(stat.uid).toBe(0);
    noTempFiles();
    // The values never reach the log.
    for (const value of ['a'.repeat(48), 'r'.repeat(48), 'fedcba987654321', 'a webhook secret']) {
      expect(run.stderr).not.toContain(value);
    }
  });

  it('leaves ERPNext secrets without a value empty, says how to put them, and keeps the connector off', () => {
    const aws = stubAws({ [API]: 'a'.repeat(48), [QDRANT]: 'b'.repeat(32), [ERP_KEY]: null, [ERP_SECRET]: null });
    const run = write(aws, [
      ...BASE,
      `OPERATOR_SECRET_ERPNEXT_API_KEY=${ERP_KEY}`,
      `OPERATOR_SECRET_ERPNEXT_API_SECRET=${ERP_SECRET}`,
      'SETTING_ERPNEXT_URL=https://erp.example.com',
    ]);
    expect(run.status, run.stderr).toBe(0);
    expect(envLines()).toEqual(expect.arrayContaining(['ERPNEXT_API_KEY=', 'ERPNEXT_API_SECRET=', 'ERPNEXT_URL=']));
    expect(run.stderr).toContain(
      `ERPNEXT_API_KEY is not set yet (README: ERPNext secrets): aws secretsmanager put-secret-value ` +
        `--region eu-central-1 --secret-id ${ERP_KEY}`,
    );
    expect(run.stderr).toContain('ERPNEXT_URL is left empty (the ERPNext connector stays off)');
  });

  it('keeps the previous file when a secret cannot be read, has no value, or is not usable, or a setting is', () => {
    writeFileSync(path.join(dir, '.env'), 'OLD=1\n');
    const cases: [Record<string, string | null>, string[], string][] = [
      [{ [API]: 'a'.repeat(48) }, BASE, 'cannot read the secret for QDRANT_API_KEY'],
      [{ [API]: null, [QDRANT]: 'b'.repeat(32) }, BASE, 'the secret for IMAGE_SEARCH_API_KEY'],
      [{ [API]: '{"key":"abcdefghijklmnopqrstuvwxyz"}', [QDRANT]: 'b'.repeat(32) }, BASE, 'must be a plain string'],
      [{ [API]: 'abc$HOME-abcdefghijklmnop', [QDRANT]: 'b'.repeat(32) }, BASE, 'must be a plain string'],
      [
        { [API]: 'a'.repeat(48), [QDRANT]: 'b'.repeat(32), [ERP_HOOK]: "it's" },
        [...BASE, `OPERATOR_SECRET_ERPNEXT_WEBHOOK_SECRET=${ERP_HOOK}`],
        "without quotes (')",
      ],
      [
        { [API]: 'a'.repeat(48), [QDRANT]: 'b'.repeat(32), [ERP_HOOK]: 'ends in a backslash\\' },
        [...BASE, `OPERATOR_SECRET_ERPNEXT_WEBHOOK_SECRET=${ERP_HOOK}`],
        'or a final backslash',
      ],
      [
        { [API]: 'a'.repeat(48), [QDRANT]: 'b'.repeat(32) },
        [...BASE, "SETTING_CORS_ORIGINS=https://a.example.com'"],
        'the setting CORS_ORIGINS must not contain quotes',
      ],
      [{ [API]: 'a'.repeat(48), [QDRANT]: 'b'.repeat(32) }, BASE.slice(1), 'has no VOLUME_ID line'],
    ];
    for (const [secrets, lines, message] of cases) {
      const run = write(stubAws(secrets), lines);
      expect(run.status, message).toBe(1);
      expect(run.stderr, message).toContain(message);
      expect(readFileSync(path.join(dir, '.env'), 'utf8')).toBe('OLD=1\n');
      noTempFiles();
    }
  });

  it('reads the deployment.env that the synthesized user data writes', () => {
    const s = synth({
      allowedCidr: '203.0.113.10/32',
      erpnextUrl: 'https://erp.example.com',
      corsOrigins: 'https://erp.example.com,https://staff.example.com',
      erpnextItemFilters: '{"item_group":"Products"}',
      erpnextSyncInterval: '15m',
      minConfidence: '0.35',
      logLevel: 'debug',
      modelFile: 'mobilenet_v3.onnx',
    });
    let text: string;
    try {
      text = cfnText(resourcesOfType(s, 'AWS::EC2::Instance')[0][1].Properties!.UserData);
    } finally {
      s.cleanup();
    }
    const start = text.indexOf(`deployment.env.tmp <<'${HEREDOC_END}'\n`);
    const body = text.slice(text.indexOf('\n', start) + 1, text.indexOf(`\n${HEREDOC_END}\n`, start));
    // The template's references become the ARNs CloudFormation would put there.
    const ids: Record<string, string> = {};
    const resolved = body.replace(/<Ref:(\w+)>/g, (_, id: string) => {
      ids[id] = id.startsWith('DataVolume') ? VOLUME : arn(id);
      return ids[id];
    });
    const secretOf = (prefix: string) => Object.keys(ids).find((id) => id.startsWith(prefix))!;
    const aws = stubAws({
      [arn(secretOf('ServerApiKey'))]: 'a'.repeat(48),
      [arn(secretOf('ServerReadApiKey'))]: 'r'.repeat(48),
      [arn(secretOf('ServerQdrantApiKey'))]: 'q'.repeat(48),
      [arn(secretOf('ServerErpNextApiKey'))]: '0123456789abcde',
      [arn(secretOf('ServerErpNextApiSecret'))]: 'fedcba987654321',
      [arn(secretOf('ServerErpNextWebhookSecret'))]: null,
    });
    const run = write(aws, resolved.split('\n'));
    expect(run.status, run.stderr).toBe(0);
    expect(
      Object.fromEntries(
        envLines().map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
      ),
    ).toEqual({
      COMPOSE_PROJECT_NAME: 'erp-image-search',
      DATA_DIR: '/data',
      AWS_REGION: 'eu-central-1',
      DATA_VOLUME_ID: VOLUME,
      IMAGE_SEARCH_API_KEY: 'a'.repeat(48),
      IMAGE_SEARCH_READ_KEY: 'r'.repeat(48),
      QDRANT_API_KEY: 'q'.repeat(48),
      ERPNEXT_API_KEY: "'0123456789abcde'",
      ERPNEXT_API_SECRET: "'fedcba987654321'",
      ERPNEXT_WEBHOOK_SECRET: '',
      CORS_ORIGINS: "'https://erp.example.com,https://staff.example.com'",
      ERPNEXT_URL: "'https://erp.example.com'",
      ERPNEXT_ITEM_FILTERS: `'{"item_group":"Products"}'`,
      ERPNEXT_SYNC_INTERVAL: "'15m'",
      MIN_CONFIDENCE: "'0.35'",
      LOG_LEVEL: "'debug'",
      MODEL_PATH: "'/data/models/mobilenet_v3.onnx'",
    });
  });
});
