// `npx cdk synth` in the repository, exactly as a user runs it: offline and without AWS credentials. When this
// process may create a network namespace (root + unshare), the CLI runs in one that has no network at all.
// The settings file is a temporary one (-c settingsFile=...), never the repository's deployment.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { parse } from 'yaml';
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

interface Resource {
  Type: string;
  Properties?: Record<string, unknown>;
}

describe(`npx cdk synth (${canIsolate ? 'no network at all' : 'no AWS credentials'})`, () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'erp-cdk-cli-'));
  const settingsFile = path.join(dir, 'deployment.json');
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const cdkSynth = (...context: string[]) => {
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH,
      HOME: dir, // no ~/.aws, no ~/.cdk cache
      CI: 'true',
      AWS_EC2_METADATA_DISABLED: 'true',
      AWS_CONFIG_FILE: path.join(dir, 'none'),
      AWS_SHARED_CREDENTIALS_FILE: path.join(dir, 'none'),
      CDK_DISABLE_CLI_TELEMETRY: 'true',
      npm_config_cache: process.env.npm_config_cache ?? path.join(process.env.HOME ?? dir, '.npm'),
    };
    const args = ['--no-notices', '--output', path.join(dir, 'cdk.out'), '-c', `settingsFile=${settingsFile}`];
    const command = ['npx', 'cdk', 'synth', ...args, ...context.flatMap((value) => ['-c', value])];
    const run = canIsolate
      ? spawnSync('unshare', ['-n', ...command], { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 })
      : spawnSync(command[0], command.slice(1), { cwd: ROOT, env, encoding: 'utf8', timeout: 180_000 });
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toMatch(/\bERROR\b|Validation failed/);
    const template = parse(run.stdout) as { Resources: Record<string, Resource>; Outputs: Record<string, unknown> };
    return { ...run, template, resources: Object.values(template.Resources) };
  };
  const of = (resources: Resource[], type: string) => resources.filter((resource) => resource.Type === type);

  it('synthesizes HTTPS, no public 8020: cdk synth -c domainName=... -c hostedZoneId=... -c allowedCidr=...', () => {
    const run = cdkSynth('domainName=api.example.com', 'hostedZoneId=Z123', 'allowedCidr=203.0.113.10/32');
    expect(run.stdout).toMatch(/^Resources:/m);
    expect(of(run.resources, 'AWS::EC2::Instance')[0].Properties!.ImageId).toBe(
      'resolve:ssm:/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id',
    );
    const listeners = of(run.resources, 'AWS::ElasticLoadBalancingV2::Listener').map((l) => l.Properties!);
    expect(listeners.map((l) => `${String(l.Port)}/${String(l.Protocol)}`).sort()).toEqual(['443/HTTPS', '80/HTTP']);
    const publicIngress = [
      ...of(run.resources, 'AWS::EC2::SecurityGroup').flatMap(
        (group) => (group.Properties!.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? [],
      ),
      ...of(run.resources, 'AWS::EC2::SecurityGroupIngress').map((rule) => rule.Properties!),
    ].filter((rule) => rule.CidrIp || rule.CidrIpv6);
    expect(publicIngress.map((rule) => `${String(rule.FromPort)} ${String(rule.CidrIp)}`).sort()).toEqual([
      '443 203.0.113.10/32',
      '80 203.0.113.10/32',
    ]);
    expect(run.template.Outputs).toHaveProperty(
      'ApiUrl',
      expect.objectContaining({ Value: 'https://api.example.com' }),
    );
    // What was given is saved for the next run, and the CLI shows it.
    expect(run.stderr).toContain(`in ${settingsFile}: later deploys reuse them without -c.`);
    expect(JSON.parse(readFileSync(settingsFile, 'utf8'))).toEqual({
      stackName: 'ErpImageSearch',
      availabilityZone: 'eu-central-1a',
      allowedCidr: ['203.0.113.10/32'],
      domainName: 'api.example.com',
      hostedZoneId: 'Z123',
    });
  });

  it('a second synth without any -c reuses the saved settings; a zone change is refused with the reason', () => {
    const again = cdkSynth();
    expect(of(again.resources, 'AWS::ElasticLoadBalancingV2::LoadBalancer')).toHaveLength(1);
    expect(JSON.stringify(again.resources)).toContain('203.0.113.10/32');
    expect(again.stderr).not.toContain('later deploys reuse them'); // nothing changed, nothing written

    const moved = spawnSync(
      'npx',
      [
        'cdk',
        'synth',
        '--no-notices',
        '-o',
        path.join(dir, 'out2'),
        '-c',
        `settingsFile=${settingsFile}`,
        '-c',
        'availabilityZone=eu-west-1a',
      ],
      { cwd: ROOT, env: { ...process.env, CDK_DISABLE_CLI_TELEMETRY: 'true' }, encoding: 'utf8', timeout: 180_000 },
    );
    expect(moved.status).not.toBe(0);
    expect(moved.stdout + moved.stderr).toContain(
      "availabilityZone: this deployment's data volume lives in eu-central-1a and cannot move to eu-west-1a",
    );
  });

  it('warns loudly when a deploy would close the API port', () => {
    const closing = cdkSynth('allowedCidr=');
    expect(closing.stderr).toContain('!!!!!!!!!!');
    expect(closing.stderr).toContain('!! The API port CLOSES for 203.0.113.10/32');
    expect(closing.stderr).toMatch(/WARNING The API port CLOSES for 203\.0\.113\.10\/32/);
  });
});
