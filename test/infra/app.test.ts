// `npx cdk synth` in the repository, exactly as a user runs it: offline and without AWS credentials. When this
// process may create a network namespace (root + unshare), the CLI runs in one that has no network at all.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ROOT } from './synth.js';

const canIsolate = (() => {
  try {
    execFileSync('unshare', ['-n', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
if (!canIsolate)
  console.log(
    'cdk synth test: cannot create a network namespace (needs root and unshare); running with AWS credentials ' +
      'and IMDS disabled instead',
  );

describe(`npx cdk synth (${canIsolate ? 'no network at all' : 'no AWS credentials'})`, () => {
  const outdir = mkdtempSync(path.join(tmpdir(), 'erp-cdk-cli-'));
  afterAll(() => rmSync(outdir, { recursive: true, force: true }));

  it('prints the template with no credentials', () => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: outdir, // no ~/.aws, no ~/.cdk cache
      CI: 'true',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: path.join(outdir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(outdir, 'none'),
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      npm_config_cache: process.env.npm_config_cache ?? path.join(process.env.HOME ?? outdir, '.npm'),
    };
    const command = ['npx', 'cdk', 'synth', '--no-notices', '--output', outdir, '-c', 'allowedCidr=203.0.113.10/32'];
    const run = canIsolate
      ? spawnSync('unshare', ['-n', ...command], { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 })
      : spawnSync(command[0], command.slice(1), { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/^Resources:/m);
    expect(run.stdout).toContain('Type: AWS::EC2::Instance');
    expect(run.stdout).toContain(
      'resolve:ssm:/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id',
    );
    expect(run.stderr).not.toMatch(/\bERROR\b|Validation failed/);
  });
});
