// cdk-nag (v3) AwsSolutions checks run inside app.synth(): any finding that is not acknowledged makes the
// synthesis throw. Each acknowledgement must carry a real reason.
import { App } from 'aws-cdk-lib';
import * as sns from 'aws-cdk-lib/aws-sns';
import { afterAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../infra/stack.js';
import { synth, type Synthesized } from './synth.js';

/** Acknowledgements made by this project's code (aws-cdk-lib makes a few of its own inside its constructs). */
const acknowledgements = (app: App) =>
  app.node.findAll().flatMap((construct) =>
    construct.node.metadata
      .filter((entry) => entry.type === 'aws:cdk:acknowledged-rules')
      .filter(
        (entry) =>
          !entry.trace || (entry.trace.find((frame) => !frame.includes('acknowledge')) ?? '').includes('/infra/'),
      )
      .flatMap((entry) =>
        Object.entries(entry.data as Record<string, string>).map(([id, reason]) => ({
          path: construct.node.path,
          id,
          reason,
        })),
      ),
  );

describe('cdk-nag AwsSolutions', () => {
  const made: Synthesized[] = [];
  afterAll(() => made.forEach((s) => s.cleanup()));

  it.each([
    ['the default deployment', { allowedCidr: '203.0.113.10/32' }],
    [
      'SSH, e-mail alarms, an existing key, t3 and Ubuntu 24.04',
      {
        allowedCidr: '203.0.113.10/32',
        sshCidr: '192.0.2.7/32',
        alarmEmail: 'ops@example.com',
        apiKeySecretArn: 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:k-AbCdEf',
        instanceType: 't3.medium',
        ubuntuRelease: '24.04',
      },
    ],
    ['a pinned AMI with the API port closed', { amiId: 'ami-0123456789abcdef0' }],
    [
      'HTTPS with a certificate and DNS record made by the stack, and the ERPNext connector',
      {
        allowedCidr: '203.0.113.10/32',
        domainName: 'api.example.com',
        hostedZoneId: 'Z123',
        erpnextUrl: 'https://erp.example.com',
      },
    ],
    [
      'HTTPS with an existing certificate, open to the world on purpose',
      {
        allowedCidr: '0.0.0.0/0',
        allowAnyCidr: true,
        domainName: 'api.example.com',
        certificateArn: 'arn:aws:acm:eu-central-1:123456789012:certificate/12345678-1234-1234-1234-123456789012',
      },
    ],
  ])('passes for %s with every acknowledgement reasoned', (_name, context) => {
    const s = synth(context); // throws "Validation failed" on any unacknowledged finding
    made.push(s);
    const acks = acknowledgements(s.app);
    expect(acks.length).toBeGreaterThan(5);
    for (const ack of acks) {
      expect(ack.reason.length, `${ack.path} ${ack.id}`).toBeGreaterThanOrEqual(60);
      expect(ack.reason.toLowerCase()).not.toMatch(/^(todo|n\/a|ok|suppress)/);
    }
  });

  const BASE_FINDINGS = [
    'AwsSolutions::AwsSolutions-EC28',
    'AwsSolutions::AwsSolutions-EC29',
    'AwsSolutions::AwsSolutions-IAM4',
    'AwsSolutions::AwsSolutions-IAM5',
    'AwsSolutions::AwsSolutions-SMG4',
    'CloudFormation-Validate::E1152',
  ];
  it.each([
    ['e-mail alarms: the SNS topic', { alarmEmail: 'ops@example.com' }, ['AwsSolutions::AwsSolutions-SNS2']],
    [
      'HTTPS: server access logs of the log bucket',
      { domainName: 'api.example.com', hostedZoneId: 'Z123' },
      ['AwsSolutions::AwsSolutions-S1'],
    ],
  ])('acknowledges only the findings this design accepts; with %s in addition', (_name, context, extra) => {
    const s = synth({ allowedCidr: '203.0.113.10/32', ...context });
    made.push(s);
    const ids = [...new Set(acknowledgements(s.app).map((ack) => ack.id.replace(/\[.*$/, '')))].sort();
    expect(ids).toEqual([...BASE_FINDINGS, ...extra].sort());
  });

  it('really checks the app: an unacknowledged finding fails the synthesis', () => {
    const app = new App({
      outdir: made[0].outdir + '-probe',
      context: { settingsFile: made[0].outdir + '-probe.json', allowedCidr: '203.0.113.10/32' },
    });
    const { stack } = buildApp(app);
    new sns.Topic(stack, 'UnencryptedProbe');
    expect(() => app.synth()).toThrow(/AwsSolutions-SNS3/);
  });
});
