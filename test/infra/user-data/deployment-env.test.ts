// deployment-env.sh (sourced by boot.sh and write-compose-env.sh) reads deployment.env literally, run with bash.
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SCRIPTS } from './run-script.js';

describe('deployment-env.sh', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'deployment-env-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'deployment.env');
  // The last line has no newline: a file cut short by hand must still be read.
  writeFileSync(
    file,
    ['VOLUME_ID=vol-0123456789abcdef0', 'BACKUP_SCHEDULE=*-*-* 02:30:00', 'SETTING_X=a=b $HOME `x`', 'LAST=1'].join(
      '\n',
    ),
  );
  const value = (name: string) =>
    spawnSync('bash', ['-c', `. '${SCRIPTS}/deployment-env.sh' && deployment_value "$1" "$2"`, 'bash', file, name], {
      encoding: 'utf8',
    });

  it('prints a value exactly as written: globs, $, backquotes and = are not interpreted', () => {
    expect(value('BACKUP_SCHEDULE').stdout).toBe('*-*-* 02:30:00');
    expect(value('SETTING_X').stdout).toBe('a=b $HOME `x`');
    expect(value('LAST').stdout).toBe('1');
    expect(value('VOLUME_ID').stdout).toBe('vol-0123456789abcdef0');
  });

  it('fails with the file and the name when the line is missing, and never matches a prefix', () => {
    const missing = value('VOLUME');
    expect(missing.status).toBe(1);
    expect(missing.stdout).toBe('');
    expect(missing.stderr).toBe(`deployment.env (${file}) has no VOLUME line\n`);
  });
});
