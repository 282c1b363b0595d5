import { describe, expect, it } from 'vitest';
import { ConfigError, FIELDS, loadConfig } from '../../infra/config.js';
import { CDK_JSON } from './synth.js';

const load = (context: Record<string, unknown>) => loadConfig((key) => context[key]);
const problems = (context: Record<string, unknown>) => {
  try {
    load(context);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
};

describe('deployment config', () => {
  it('gives the documented defaults when nothing is set', () => {
    const config = load({});
    expect(config).toMatchObject({
      stackName: 'ErpImageSearch',
      availabilityZone: 'eu-central-1a',
      region: 'eu-central-1',
      instanceType: 't4g.medium',
      architecture: 'arm64',
      ubuntuRelease: '22.04',
      amiParameterName: '/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id',
      dataVolumeGiB: 30,
      dataVolumeRemovalPolicy: 'retain',
      allowedCidr: [],
      allowAnyCidr: false,
      backupSchedule: '*-*-* 02:30:00',
      snapshotTime: '03:00',
      snapshotRetainCount: 7,
      terminationProtection: true,
    });
    expect(config.sshCidr).toBeUndefined();
    expect(config.apiKeySecretArn).toBeUndefined();
    expect(config.warnings).toEqual([expect.stringContaining('allowedCidr is not set')]);
  });

  it('cdk.json sets only known keys, and they are valid', () => {
    expect(Object.keys(CDK_JSON.context).filter((key) => !(key in FIELDS))).toEqual([]);
    expect(() => load(CDK_JSON.context)).not.toThrow();
  });

  it('accepts strings from -c as well as JSON values from cdk.json', () => {
    const fromCli = load({
      dataVolumeGiB: '50',
      allowAnyCidr: 'false',
      terminationProtection: 'false',
      snapshotRetainCount: '14',
    });
    const fromJson = load({
      dataVolumeGiB: 50,
      allowAnyCidr: false,
      terminationProtection: false,
      snapshotRetainCount: 14,
    });
    expect(fromCli).toEqual(fromJson);
    expect(fromCli.dataVolumeGiB).toBe(50);
    expect(fromCli.terminationProtection).toBe(false);
  });

  it.each([
    [
      't4g.medium',
      'arm64',
      '22.04',
      '/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id',
    ],
    [
      't3.medium',
      'amd64',
      '22.04',
      '/aws/service/canonical/ubuntu/server/22.04/stable/current/amd64/hvm/ebs-gp2/ami-id',
    ],
    [
      't4g.large',
      'arm64',
      '24.04',
      '/aws/service/canonical/ubuntu/server/24.04/stable/current/arm64/hvm/ebs-gp3/ami-id',
    ],
    [
      't3.medium',
      'amd64',
      '24.04',
      '/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id',
    ],
  ])('%s on Ubuntu %s → %s AMI parameter', (instanceType, architecture, ubuntuRelease, parameter) => {
    const config = load({ instanceType, ubuntuRelease });
    expect(config.architecture).toBe(architecture);
    expect(config.amiParameterName).toBe(parameter);
  });

  it('derives the region from the pinned AZ', () => {
    expect(load({ availabilityZone: 'us-east-1b' }).region).toBe('us-east-1');
    expect(load({ availabilityZone: 'ap-southeast-2c' }).region).toBe('ap-southeast-2');
    expect(problems({ availabilityZone: 'eu-central-1' })).toContain('availabilityZone');
  });

  it('normalises CIDR lists and drops duplicates', () => {
    const config = load({ allowedCidr: '203.0.113.10/32, 198.51.100.0/24,203.0.113.10/32', sshCidr: '192.0.2.7/32' });
    expect(config.allowedCidr).toEqual(['203.0.113.10/32', '198.51.100.0/24']);
    expect(config.sshCidr).toBe('192.0.2.7/32');
    expect(config.warnings).toEqual([]);
    expect(load({ allowedCidr: ['2001:db8:0:0::/64'] }).allowedCidr).toEqual(['2001:db8::/64']);
  });

  it('refuses CIDRs with host bits and says which network was meant', () => {
    expect(problems({ allowedCidr: '203.0.113.10/24' })).toContain('did you mean 203.0.113.0/24');
    expect(problems({ allowedCidr: '203.0.113.10' })).toContain('is not a CIDR');
    expect(problems({ allowedCidr: '10/8' })).toContain('is not a CIDR');
  });

  it('refuses the whole internet unless explicitly forced', () => {
    expect(problems({ allowedCidr: '0.0.0.0/0' })).toContain('allowAnyCidr=true');
    expect(problems({ allowedCidr: '::/0' })).toContain('allowAnyCidr=true');
    expect(load({ allowedCidr: '0.0.0.0/0', allowAnyCidr: 'true' }).allowedCidr).toEqual(['0.0.0.0/0']);
    // SSH to the world is never an option.
    expect(problems({ sshCidr: '0.0.0.0/0', allowAnyCidr: true })).toContain('sshCidr');
  });

  it('reports every bad key at once, one line each', () => {
    const message = problems({
      instanceType: 'large',
      ubuntuRelease: '20.04',
      dataVolumeGiB: 100,
      dataVolumeRemovalPolicy: 'destroy',
      apiKeySecretArn: 'my-secret',
      amiId: 'ubuntu',
      backupSchedule: 'daily\n[Service]',
      snapshotTime: '25:00',
      snapshotRetainCount: 0,
      alarmEmail: 'ops',
      terminationProtection: 'yes',
      stackName: '1stack',
    });
    const lines = message.split('\n').filter((line) => line.startsWith('- '));
    expect(lines.map((line) => line.slice(2, line.indexOf(':')))).toEqual([
      'stackName',
      'instanceType',
      'ubuntuRelease',
      'amiId',
      'dataVolumeGiB',
      'dataVolumeRemovalPolicy',
      'apiKeySecretArn',
      'backupSchedule',
      'snapshotTime',
      'snapshotRetainCount',
      'alarmEmail',
      'terminationProtection',
    ]);
    expect(message).toContain('must be a whole number from 20 to 50');
    expect(message).toContain('must be one of 22.04, 24.04');
  });

  it('accepts the optional settings in their documented forms', () => {
    const config = load({
      apiKeySecretArn: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:erp/image-search-AbCdEf',
      amiId: 'ami-0123456789abcdef0',
      alarmEmail: 'ops@example.com',
      dataVolumeRemovalPolicy: 'snapshot',
      backupSchedule: 'Mon..Fri *-*-* 01:15:00',
    });
    expect(config).toMatchObject({
      amiId: 'ami-0123456789abcdef0',
      alarmEmail: 'ops@example.com',
      dataVolumeRemovalPolicy: 'snapshot',
    });
  });
});
