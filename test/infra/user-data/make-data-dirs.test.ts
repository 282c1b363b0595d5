import { mkdirSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { isRoot, runScript } from './run-script.js';

const reason = isRoot() ? '' : 'not running as root (chown to other users needs root)';
if (reason) console.log(`make-data-dirs tests skipped: ${reason}`);

describe.skipIf(Boolean(reason))('make-data-dirs.sh', () => {
  let dir: string;
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  it("creates the five directories with the containers' owners, mode 750, and touches no contents", () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dirs-'));
    mkdirSync(path.join(dir, 'images'));
    writeFileSync(path.join(dir, 'images', 'a.jpg'), 'x');
    for (let round = 0; round < 2; round++) {
      const run = runScript('make-data-dirs.sh', [dir]);
      expect(run.status, run.stderr).toBe(0);
    }
    const owner = (name: string) => {
      const stat = statSync(path.join(dir, name));
      return `${stat.uid}:${stat.gid}:${(stat.mode & 0o777).toString(8)}`;
    };
    expect(['images', 'backups', 'models', 'qdrant', 'qdrant-snapshots'].map(owner)).toEqual([
      '10001:10001:750',
      '10001:10001:750',
      '10001:10001:750',
      '1000:1000:750',
      '1000:1000:750',
    ]);
    expect(statSync(path.join(dir, 'images', 'a.jpg')).uid).toBe(0);
  });

  it('refuses a missing data directory', () => {
    dir = mkdtempSync(path.join(tmpdir(), 'dirs-'));
    const run = runScript('make-data-dirs.sh', [path.join(dir, 'missing')]);
    expect(run.status).toBe(1);
    expect(runScript('make-data-dirs.sh', []).status).toBe(2);
  });
});
