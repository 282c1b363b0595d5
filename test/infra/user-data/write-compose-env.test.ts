import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runScript } from './run-script.js';

const API_ARN = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:api-AbCdEf';
const QDRANT_ARN = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:qdrant-GhIjKl';

describe('write-compose-env.sh', () => {
  let dir: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'env-'));
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A strict stand-in for the AWS CLI: answers only the exact get-secret-value calls the script must make. */
  const stubAws = (secrets: Record<string, string>) => {
    const cases = Object.entries(secrets)
      .map(
        ([arn, value]) =>
          `  "secretsmanager get-secret-value --region eu-central-1 --secret-id ${arn} --query SecretString ` +
          `--output text") printf '%s\\n' '${value}' ;;`,
      )
      .join('\n');
    writeFileSync(
      path.join(dir, 'aws'),
      `#!/bin/bash\ncase "$*" in\n${cases}\n  *) echo "unexpected aws call: $*" >&2; exit 254 ;;\nesac\n`,
      { mode: 0o755 },
    );
    return { PATH: `${dir}:${process.env.PATH}` };
  };
  const write = (env: NodeJS.ProcessEnv, extra?: string) =>
    runScript(
      'write-compose-env.sh',
      [path.join(dir, '.env'), 'eu-central-1', API_ARN, QDRANT_ARN, 'vol-0123456789abcdef0', ...(extra ? [extra] : [])],
      env,
    );

  it('writes both keys and the deployment values into a root-only file, in one step', () => {
    const extra = path.join(dir, 'extra.env');
    writeFileSync(extra, 'IMAGE_URL_ALLOW=erp.internal\n');
    const run = write(stubAws({ [API_ARN]: 'a'.repeat(48), [QDRANT_ARN]: 'Q1w2e3r4t5y6u7i8o9p0' }), extra);
    expect(run.status, run.stderr).toBe(0);
    const text = readFileSync(path.join(dir, '.env'), 'utf8');
    const lines = text.split('\n').filter((line) => line && !line.startsWith('#'));
    expect(lines).toEqual([
      'COMPOSE_PROJECT_NAME=erp-image-search',
      'DATA_DIR=/data',
      'AWS_REGION=eu-central-1',
      'DATA_VOLUME_ID=vol-0123456789abcdef0',
      `IMAGE_SEARCH_API_KEY=${'a'.repeat(48)}`,
      'QDRANT_API_KEY=Q1w2e3r4t5y6u7i8o9p0',
      'IMAGE_URL_ALLOW=erp.internal',
    ]);
    const stat = statSync(path.join(dir, '.env'));
    expect((stat.mode & 0o777).toString(8)).toBe('600');
    if (process.getuid?.() === 0) expect(stat.uid).toBe(0);
    expect(readdirSync(dir).filter((name) => name.startsWith('.env.'))).toEqual([]);
    // The values never reach the log.
    expect(run.stderr).not.toContain('a'.repeat(48));
  });

  it('keeps the previous file when a secret cannot be read or is not a plain token', () => {
    writeFileSync(path.join(dir, '.env'), 'OLD=1\n');
    const unreadable = write(stubAws({ [API_ARN]: 'a'.repeat(48) }));
    expect(unreadable.status).toBe(1);
    expect(unreadable.stderr).toContain('cannot read the secret for QDRANT_API_KEY');
    const json = write(stubAws({ [API_ARN]: '{"key":"abcdefghijklmnopqrstuvwxyz"}', [QDRANT_ARN]: 'b'.repeat(32) }));
    expect(json.status).toBe(1);
    expect(json.stderr).toContain('must be a plain string');
    const dollar = write(stubAws({ [API_ARN]: 'abc$HOME-abcdefghijklmnop', [QDRANT_ARN]: 'b'.repeat(32) }));
    expect(dollar.status).toBe(1);
    expect(readFileSync(path.join(dir, '.env'), 'utf8')).toBe('OLD=1\n');
    expect(readdirSync(dir).filter((name) => name.startsWith('.env.'))).toEqual([]);
  });
});
