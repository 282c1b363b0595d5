// shellcheck over every shell script of the repository (.ci/run installs it; elsewhere this skips and says so).
import { execFileSync, spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from './synth.js';

const available = spawnSync('shellcheck', ['--version'], { stdio: 'ignore' }).status === 0;
if (!available) console.log('shellcheck tests skipped: shellcheck is not installed (apt-get install shellcheck)');

// Tracked and new (not ignored) files: every *.sh plus .ci/run, which is bash without the suffix.
const scripts = execFileSync(
  'git',
  ['ls-files', '--cached', '--others', '--exclude-standard', '--', '*.sh', '.ci/run'],
  { cwd: ROOT, encoding: 'utf8' },
)
  .split('\n')
  .filter(Boolean);

describe.skipIf(!available)('shellcheck', () => {
  it('finds the deployment scripts', () => {
    expect(scripts).toEqual(
      expect.arrayContaining([
        'infra/user-data/boot.sh',
        'infra/user-data/bootstrap.sh',
        'infra/user-data/prepare-data-volume.sh',
        'infra/user-data/install-backup-timer.sh',
        'infra/user-data/write-compose-env.sh',
        'infra/user-data/deployment-env.sh',
        'infra/user-data/seed-models.sh',
      ]),
    );
  });

  it.each(scripts)('%s is clean', (script) => {
    const run = spawnSync('shellcheck', ['--shell=bash', '--external-sources', script], {
      cwd: ROOT,
      encoding: 'utf8',
    });
    expect(run.stdout + run.stderr).toBe('');
    expect(run.status).toBe(0);
  });
});
