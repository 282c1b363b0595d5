import { describe, expect, it } from 'vitest';
import { apiExposure, ConfigError, loadConfig } from '../../infra/config.js';
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
    expect(config.tls).toBeUndefined();
    expect(config.serviceEnv).toEqual({});
    expect(config.warnings).toEqual([
      expect.stringContaining('allowedCidr is not set: port 8020 stays closed'),
      expect.stringContaining('TLS is off: the API key travels as plain HTTP'),
    ]);
  });

  it('cdk.json holds no deployment settings: defaults live in infra/config.ts, choices in the settings file', () => {
    expect(CDK_JSON.context).toBeUndefined();
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
    expect(config.warnings).toEqual([expect.stringContaining('TLS is off')]);
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
  it('turns HTTPS on with a domain and a hosted zone or a certificate of the stack region', () => {
    const zone = load({ domainName: 'api.example.com', hostedZoneId: 'Z123', allowedCidr: '203.0.113.10/32' });
    expect(zone.tls).toEqual({
      domainName: 'api.example.com',
      hostedZoneId: 'Z123',
      certificateArn: undefined,
      secondAvailabilityZone: 'eu-central-1b',
    });
    expect(zone.warnings).toEqual([]);
    const certificateArn = 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';
    const cert = load({ availabilityZone: 'us-east-1b', domainName: 'api.example.com', certificateArn });
    expect(cert.tls).toMatchObject({ certificateArn, secondAvailabilityZone: 'us-east-1a' });
    expect(cert.warnings).toEqual([expect.stringContaining('allowedCidr is not set: port 443 stays closed')]);
    expect(
      load({ domainName: 'api.example.com', hostedZoneId: 'Z1', secondAvailabilityZone: 'eu-central-1c' }).tls,
    ).toMatchObject({ secondAvailabilityZone: 'eu-central-1c' });
  });

  it('refuses incomplete or inconsistent HTTPS settings, saying what to add', () => {
    expect(problems({ domainName: 'api.example.com' })).toContain('add -c hostedZoneId=');
    expect(problems({ hostedZoneId: 'Z123' })).toContain('hostedZoneId: only used with HTTPS; add -c domainName=');
    expect(
      problems({
        domainName: 'api.example.com',
        certificateArn: 'arn:aws:acm:us-east-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      }),
    ).toContain('the certificate is in us-east-1, but a load balancer in eu-central-1 can only use');
    expect(
      problems({ domainName: 'api.example.com', hostedZoneId: 'Z1', secondAvailabilityZone: 'eu-central-1a' }),
    ).toContain('secondAvailabilityZone: must be another zone of eu-central-1');
    expect(problems({ domainName: 'https://api.example.com', hostedZoneId: 'Z1' })).toContain('is not a DNS name');
    expect(problems({ domainName: '*.example.com', hostedZoneId: 'Z1' })).toContain('no wildcard');
    expect(problems({ domainName: 'api.example.com', hostedZoneId: 'zone' })).toContain('hostedZoneId');
  });

  it("maps the service's settings to the api container's environment", () => {
    const config = load({
      corsOrigins: 'https://erp.example.com/, http://localhost:8000 ,https://erp.example.com',
      erpnextUrl: 'https://erp.example.com/',
      erpnextItemFilters: `[["Item","item_name","like","%it's%"]]`,
      erpnextSyncInterval: '15m',
      minConfidence: '.35',
      logLevel: 'debug',
      modelFile: 'mobilenet_v3.onnx',
    });
    expect(config.serviceEnv).toEqual({
      CORS_ORIGINS: 'https://erp.example.com,http://localhost:8000',
      ERPNEXT_URL: 'https://erp.example.com',
      // Same JSON, with the quote escaped so the value fits a single-quoted .env line.
      ERPNEXT_ITEM_FILTERS: '[["Item","item_name","like","%it\\u0027s%"]]',
      ERPNEXT_SYNC_INTERVAL: '15m',
      MIN_CONFIDENCE: '0.35',
      LOG_LEVEL: 'debug',
      MODEL_PATH: '/data/models/mobilenet_v3.onnx',
    });
    expect(JSON.parse(config.serviceEnv.ERPNEXT_ITEM_FILTERS)).toEqual([['Item', 'item_name', 'like', "%it's%"]]);
    // Values from the settings file arrive as JSON.
    expect(
      load({ corsOrigins: ['https://erp.example.com'], erpnextItemFilters: [['Item', 'disabled', '=', 0]] }),
    ).toMatchObject({ serviceEnv: { ERPNEXT_ITEM_FILTERS: '[["Item","disabled","=",0]]' } });
    expect(load({ erpnextUrl: 'http://erp.internal:8000/' }).warnings).toContain(
      'erpnextUrl is plain http: the ERPNext API key and secret travel unencrypted.',
    );
  });

  it('refuses bad service settings, one line each', () => {
    const message = problems({
      corsOrigins: 'https://erp.example.com/app',
      erpnextUrl: 'https://user:pw@erp.example.com',
      erpnextItemFilters: '[["Item"',
      erpnextSyncInterval: '15 minutes',
      minConfidence: '1.5',
      logLevel: 'verbose',
      modelFile: '../model.onnx',
    });
    const lines = message.split('\n').filter((line) => line.startsWith('- '));
    expect(lines.map((line) => line.slice(2, line.indexOf(':')))).toEqual([
      'corsOrigins',
      'erpnextUrl',
      'erpnextItemFilters',
      'erpnextSyncInterval',
      'minConfidence',
      'logLevel',
      'modelFile',
    ]);
    expect(problems({ erpnextItemFilters: '42' })).toContain('must be a JSON list or object');
    expect(problems({ corsOrigins: '*' })).toContain('corsOrigins');
  });

  it('describes how the API is reached: 8020 without TLS, 443 with it', () => {
    expect(apiExposure(load({ allowedCidr: '203.0.113.10/32,198.51.100.0/24' }))).toEqual([
      '8020 from 203.0.113.10/32',
      '8020 from 198.51.100.0/24',
    ]);
    expect(
      apiExposure(load({ allowedCidr: '203.0.113.10/32', domainName: 'api.example.com', hostedZoneId: 'Z1' })),
    ).toEqual(['443 from 203.0.113.10/32']);
  });
});
