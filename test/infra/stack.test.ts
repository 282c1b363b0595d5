// Assertions on the synthesized template, one synthesis per configuration (beforeAll).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { Match } from 'aws-cdk-lib/assertions';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLOUD_CONFIG, HEREDOC_END } from '../../infra/constructs/boot-user-data.js';
import { cfnText, resourcesOfType, ROOT, synth, type Synthesized } from './synth.js';

const ERP = '203.0.113.10/32';

const ingressRules = (s: Synthesized) => {
  const inline = resourcesOfType(s, 'AWS::EC2::SecurityGroup').flatMap(
    ([, r]) => (r.Properties?.SecurityGroupIngress as Record<string, unknown>[] | undefined) ?? [],
  );
  const separate = resourcesOfType(s, 'AWS::EC2::SecurityGroupIngress').map(
    ([, r]) => r.Properties as Record<string, unknown>,
  );
  return [...inline, ...separate];
};
const instanceProps = (s: Synthesized) =>
  resourcesOfType(s, 'AWS::EC2::Instance')[0][1].Properties as Record<string, unknown>;
const userData = (s: Synthesized) => cfnText(instanceProps(s).UserData);
const policyStatements = (s: Synthesized, logicalIdPrefix: string) =>
  resourcesOfType(s, 'AWS::IAM::Policy')
    .filter(([id]) => id.startsWith(logicalIdPrefix))
    .flatMap(([, r]) => (r.Properties!.PolicyDocument as { Statement: Record<string, unknown>[] }).Statement);
const actionsOf = (statement: Record<string, unknown>) => [statement.Action].flat() as string[];

describe('default deployment (t4g.medium, Ubuntu 22.04, allowedCidr set)', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ allowedCidr: ERP });
  });
  afterAll(() => s?.cleanup());

  it('runs a t4g.medium from the Canonical Ubuntu 22.04 arm64 AMI, resolved by EC2 at launch', () => {
    s.template.hasResourceProperties('AWS::EC2::Instance', {
      InstanceType: 't4g.medium',
      ImageId: 'resolve:ssm:/aws/service/canonical/ubuntu/server/22.04/stable/current/arm64/hvm/ebs-gp2/ami-id',
    });
    // No deploy-time AMI parameter (a new Ubuntu AMI must not replace the instance), no user parameters.
    expect(Object.keys(s.json.Parameters ?? {})).toEqual(['BootstrapVersion']);
  });

  it('requires IMDSv2 with hop limit 2 and has an encrypted 20 GiB gp3 root', () => {
    s.template.hasResourceProperties('AWS::EC2::Instance', {
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 2, HttpEndpoint: 'enabled' },
      BlockDeviceMappings: [
        {
          DeviceName: '/dev/sda1',
          Ebs: { VolumeSize: 20, VolumeType: 'gp3', Encrypted: true, DeleteOnTermination: true },
        },
      ],
    });
  });

  it("keeps the data on a separate encrypted gp3 volume that is retained, in the instance subnet's AZ", () => {
    const volumes = resourcesOfType(s, 'AWS::EC2::Volume');
    expect(volumes).toHaveLength(1);
    const [, volume] = volumes[0];
    expect(volume.DeletionPolicy).toBe('Retain');
    expect(volume.UpdateReplacePolicy).toBe('Retain');
    expect(volume.Properties).toMatchObject({
      VolumeType: 'gp3',
      Encrypted: true,
      Size: 30,
      AvailabilityZone: 'eu-central-1a',
    });
    expect(volume.Properties!.Tags).toEqual(
      expect.arrayContaining([{ Key: 'erp-image-search:data-volume', Value: 'ErpImageSearch' }]),
    );
    const subnetId = (instanceProps(s).SubnetId as { Ref: string }).Ref;
    expect(s.json.Resources[subnetId].Properties!.AvailabilityZone).toBe('eu-central-1a');
    expect(instanceProps(s).AvailabilityZone).toBe('eu-central-1a');
  });

  it('attaches the volume from the instance itself: no template attachment, no creation policy to deadlock on', () => {
    s.template.resourceCountIs('AWS::EC2::VolumeAttachment', 0);
    const [, instance] = resourcesOfType(s, 'AWS::EC2::Instance')[0];
    expect(instance.CreationPolicy).toBeUndefined();
    const attach = policyStatements(s, 'ServerRole').find((st) => actionsOf(st).includes('ec2:AttachVolume'));
    expect(attach?.Condition).toMatchObject({ 'ForAnyValue:StringEquals': expect.anything() });
    const detach = policyStatements(s, 'ServerRole').filter((st) => actionsOf(st).includes('ec2:DetachVolume'));
    expect(detach).toEqual([]);
  });

  it('opens exactly 8020 from the configured CIDR, never 6333 or 22', () => {
    expect(ingressRules(s)).toEqual([
      {
        CidrIp: ERP,
        IpProtocol: 'tcp',
        FromPort: 8020,
        ToPort: 8020,
        Description: `Image search API from ERPNext (${ERP})`,
      },
    ]);
    expect(JSON.stringify(s.json)).not.toMatch(/\b6333\b/);
  });

  it('gives the instance role least privilege for snapshots of its own data volume', () => {
    const statements = policyStatements(s, 'ServerRole');
    const bySid = Object.fromEntries(statements.filter((st) => st.Sid).map((st) => [st.Sid as string, st]));
    expect(bySid.SnapshotTheDataVolume).toMatchObject({
      Action: 'ec2:CreateSnapshot',
      Condition: { StringEquals: { 'aws:ResourceTag/erp-image-search:data-volume': 'ErpImageSearch' } },
    });
    expect(cfnText(bySid.SnapshotTheDataVolume.Resource)).toBe(
      'arn:<AWS::Partition>:ec2:eu-central-1:<AWS::AccountId>:volume/*',
    );
    expect(bySid.CreateTaggedSnapshots).toMatchObject({
      Action: 'ec2:CreateSnapshot',
      Condition: { StringEquals: { 'aws:RequestTag/erp-image-search:created-by': 'ebs-snapshot' } },
    });
    expect(bySid.TagSnapshotsAtCreation).toMatchObject({
      Action: 'ec2:CreateTags',
      Condition: { StringEquals: { 'ec2:CreateAction': 'CreateSnapshot' } },
    });
    expect(bySid.DeleteOwnSnapshots).toMatchObject({
      Action: 'ec2:DeleteSnapshot',
      Condition: { StringEquals: { 'aws:ResourceTag/erp-image-search:created-by': 'ebs-snapshot' } },
    });
    for (const sid of ['CreateTaggedSnapshots', 'TagSnapshotsAtCreation', 'DeleteOwnSnapshots']) {
      expect(cfnText(bySid[sid].Resource)).toBe('arn:<AWS::Partition>:ec2:eu-central-1::snapshot/*');
    }
    expect(bySid.DescribeVolumesAndSnapshots).toMatchObject({
      Action: ['ec2:DescribeSnapshots', 'ec2:DescribeVolumes'],
      Resource: '*',
    });
    // Nothing else gets a bare '*' resource, and no action wildcard on EC2 or Secrets Manager.
    const starResources = statements.filter((st) => st.Resource === '*').map((st) => st.Sid);
    expect(starResources).toEqual(['DescribeVolumesAndSnapshots']);
    expect(statements.flatMap(actionsOf).filter((a) => /^(ec2|secretsmanager):.*\*/.test(a))).toEqual([]);
  });

  it('lets the instance read exactly its two secrets, and uses SSM instead of SSH', () => {
    const reads = policyStatements(s, 'ServerRole').filter((st) =>
      actionsOf(st).includes('secretsmanager:GetSecretValue'),
    );
    expect(reads.map((st) => st.Resource)).toEqual([
      { Ref: expect.stringMatching(/^ServerApiKey/) },
      { Ref: expect.stringMatching(/^ServerQdrantApiKey/) },
    ]);
    s.template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] },
      ],
    });
    expect(instanceProps(s).KeyName).toBeUndefined();
  });

  it('generates both keys in Secrets Manager and puts no secret value anywhere in the template', () => {
    const secrets = resourcesOfType(s, 'AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(2);
    for (const [, secret] of secrets) {
      expect(secret.Properties).toMatchObject({
        GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
      });
      expect(secret.Properties!.SecretString).toBeUndefined();
    }
    const text = JSON.stringify(s.json);
    expect(text).not.toMatch(/resolve:secretsmanager|"SecretString"\s*:|"SecretStringTemplate"/);
    // The user data passes secret ARNs only.
    expect(userData(s)).toContain("'<Ref:ServerApiKey");
    expect(userData(s)).not.toMatch(/IMAGE_SEARCH_API_KEY=|QDRANT_API_KEY=/);
  });

  it('user data: cloud-init runs it on every boot, and it writes bootstrap.sh byte for byte and runs it', () => {
    const text = userData(s);
    expect(text).toContain(
      `Content-Type: text/cloud-config; charset="utf-8"\n\n#cloud-config\n${JSON.stringify(CLOUD_CONFIG)}`,
    );
    const start = text.indexOf(`<<'${HEREDOC_END}'\n`) + `<<'${HEREDOC_END}'\n`.length;
    const end = text.indexOf(`\n${HEREDOC_END}\n`);
    expect(text.slice(start, end) + '\n').toBe(readFileSync(path.join(ROOT, 'infra/user-data/bootstrap.sh'), 'utf8'));
    const exec = text
      .slice(end)
      .split('\n')
      .find((line) => line.startsWith('exec bash'));
    expect(exec).toMatch(
      /^exec bash \/opt\/erp-image-search\/bootstrap\.sh 'eu-central-1' 's3:\/\/cdk-hnb659fds-assets-<AWS::AccountId>-eu-central-1\/[0-9a-f]{64}\.zip' '<Ref:DataVolume\w+>' '<Ref:ServerApiKey\w+>' '<Ref:ServerQdrantApiKey\w+>' '\*-\*-\* 02:30:00'$/,
    );
  });

  it('changing user data stops and starts the instance instead of replacing it', () => {
    const [logicalId] = resourcesOfType(s, 'AWS::EC2::Instance')[0];
    const again = synth({ allowedCidr: ERP, backupSchedule: '*-*-* 04:00:00' });
    try {
      expect(resourcesOfType(again, 'AWS::EC2::Instance')[0][0]).toBe(logicalId);
      expect(userData(again)).not.toBe(userData(s));
    } finally {
      again.cleanup();
    }
  });

  it('ships the project without host modules, data, tests or secrets', () => {
    const assetDir = path.join(s.outdir, `asset.${/([0-9a-f]{64})\.zip/.exec(userData(s))![1]}`);
    for (const present of [
      'infra/user-data/boot.sh',
      'infra/user-data/make-data-dirs.sh',
      'docker-compose.yml',
      'service/Dockerfile',
      'package-lock.json',
      '.npmrc',
      '.dockerignore',
      'models/export.py',
    ]) {
      expect(existsSync(path.join(assetDir, present)), present).toBe(true);
    }
    for (const absent of ['node_modules', '.git', '.env', 'data', 'test', 'dist', 'cdk.out']) {
      expect(existsSync(path.join(assetDir, absent)), absent).toBe(false);
    }
  });

  it('gives the instance a fixed public address', () => {
    s.template.hasResourceProperties('AWS::EC2::EIP', {
      Domain: 'vpc',
      InstanceId: { Ref: resourcesOfType(s, 'AWS::EC2::Instance')[0][0] },
    });
  });

  it('takes daily DLM snapshots of the tagged data volume and keeps 7', () => {
    s.template.hasResourceProperties('AWS::DLM::LifecyclePolicy', {
      State: 'ENABLED',
      PolicyDetails: {
        ResourceTypes: ['VOLUME'],
        TargetTags: [{ Key: 'erp-image-search:data-volume', Value: 'ErpImageSearch' }],
        Schedules: [
          Match.objectLike({
            CreateRule: { Interval: 24, IntervalUnit: 'HOURS', Times: ['03:00'] },
            RetainRule: { Count: 7 },
            CopyTags: true,
          }),
        ],
      },
    });
  });

  it('recovers the instance on a failed system status check and reboots it on a failed instance check', () => {
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'StatusCheckFailed_System',
      Namespace: 'AWS/EC2',
      Dimensions: [{ Name: 'InstanceId', Value: { Ref: Match.stringLikeRegexp('^ServerInstance') } }],
      AlarmActions: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':automate:eu-central-1:ec2:recover']] }],
    });
    s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
      MetricName: 'StatusCheckFailed_Instance',
      AlarmActions: [{ 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':automate:eu-central-1:ec2:reboot']] }],
    });
    s.template.resourceCountIs('AWS::SNS::Topic', 0);
  });

  it('outputs the API URL, instance, volume, secret and the SSM command', () => {
    const outputs = Object.fromEntries(
      Object.entries(s.json.Outputs!).map(([key, output]) => [key, cfnText(output.Value)]),
    );
    expect(outputs).toMatchObject({
      ApiUrl: expect.stringMatching(/^http:\/\/<GetAtt:ServerAddress\w+\.PublicIp>:8020$/),
      InstanceId: expect.stringMatching(/^<Ref:ServerInstance/),
      DataVolumeId: expect.stringMatching(/^<Ref:DataVolume/),
      ApiKeySecretArn: expect.stringMatching(/^<Ref:ServerApiKey/),
      SsmStartSessionCommand: expect.stringMatching(
        /^aws ssm start-session --region eu-central-1 --target <Ref:ServerInstance\w+>$/,
      ),
    });
  });

  it('protects the stack from deletion', () => {
    expect(s.assembly.getStackByName('ErpImageSearch').terminationProtection).toBe(true);
  });
});

describe('alternative deployment (t3.medium, Ubuntu 24.04, SSH, e-mail, existing API key, snapshot policy)', () => {
  const existing = 'arn:aws:secretsmanager:eu-central-1:123456789012:secret:erp/image-search-AbCdEf';
  let s: Synthesized;
  beforeAll(() => {
    s = synth({
      allowedCidr: '203.0.113.10/32,198.51.100.0/24',
      sshCidr: '192.0.2.7/32',
      instanceType: 't3.medium',
      ubuntuRelease: '24.04',
      alarmEmail: 'ops@example.com',
      apiKeySecretArn: existing,
      dataVolumeRemovalPolicy: 'snapshot',
      dataVolumeGiB: 50,
      snapshotRetainCount: 14,
    });
  });
  afterAll(() => s?.cleanup());

  it('follows the instance type to the amd64 Ubuntu 24.04 AMI', () => {
    s.template.hasResourceProperties('AWS::EC2::Instance', {
      InstanceType: 't3.medium',
      ImageId: 'resolve:ssm:/aws/service/canonical/ubuntu/server/24.04/stable/current/amd64/hvm/ebs-gp3/ami-id',
    });
  });

  it('opens 8020 to each configured CIDR and 22 only to sshCidr', () => {
    const rules = ingressRules(s).map((rule) => `${String(rule.FromPort)}<-${String(rule.CidrIp)}`);
    expect(rules.sort()).toEqual(['22<-192.0.2.7/32', '8020<-198.51.100.0/24', '8020<-203.0.113.10/32']);
    for (const rule of ingressRules(s)) expect(rule.Description).toMatch(/\(.+\/\d+\)/);
  });

  it('uses the existing API key secret and generates only the Qdrant key', () => {
    expect(resourcesOfType(s, 'AWS::SecretsManager::Secret')).toHaveLength(1);
    const reads = policyStatements(s, 'ServerRole').filter((st) =>
      actionsOf(st).includes('secretsmanager:GetSecretValue'),
    );
    expect(reads.map((st) => st.Resource)).toContainEqual(`${existing}`);
    expect(userData(s)).toContain(`'${existing}'`);
  });

  it('snapshots the data volume when it is removed, and sizes it from the context', () => {
    const [, volume] = resourcesOfType(s, 'AWS::EC2::Volume')[0];
    expect(volume.DeletionPolicy).toBe('Snapshot');
    expect(volume.Properties!.Size).toBe(50);
    s.template.hasResourceProperties('AWS::DLM::LifecyclePolicy', {
      PolicyDetails: { Schedules: [Match.objectLike({ RetainRule: { Count: 14 } })] },
    });
  });

  it('sends both alarms to the e-mail topic, which refuses plain HTTP publishers', () => {
    s.template.hasResourceProperties('AWS::SNS::Subscription', { Protocol: 'email', Endpoint: 'ops@example.com' });
    s.template.hasResourceProperties('AWS::SNS::TopicPolicy', {
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
    for (const metric of ['StatusCheckFailed_System', 'StatusCheckFailed_Instance']) {
      s.template.hasResourceProperties('AWS::CloudWatch::Alarm', {
        MetricName: metric,
        AlarmActions: Match.arrayWith([{ Ref: Match.stringLikeRegexp('^AlarmsNotifications') }]),
      });
    }
  });
});

describe('edge configurations', () => {
  it('without allowedCidr the API port stays closed and the stack warns', () => {
    const s = synth({});
    try {
      expect(ingressRules(s)).toEqual([]);
      const warnings = s.assembly
        .getStackByName('ErpImageSearch')
        .messages.filter((m) => String(m.level) === 'warning')
        .map((m) => JSON.stringify(m.entry.data));
      expect(warnings.some((w) => w.includes('allowedCidr is not set'))).toBe(true);
    } finally {
      s.cleanup();
    }
  });

  it('a forced 0.0.0.0/0 is honoured (and acknowledged for cdk-nag), an unforced one is refused', () => {
    expect(() => synth({ allowedCidr: '0.0.0.0/0' })).toThrow(/allowAnyCidr=true/);
    const s = synth({ allowedCidr: '0.0.0.0/0', allowAnyCidr: true });
    try {
      expect(ingressRules(s)).toEqual([expect.objectContaining({ CidrIp: '0.0.0.0/0', FromPort: 8020, ToPort: 8020 })]);
    } finally {
      s.cleanup();
    }
  });

  it('an amiId pin uses that exact AMI', () => {
    const s = synth({ allowedCidr: ERP, amiId: 'ami-0123456789abcdef0' });
    try {
      s.template.hasResourceProperties('AWS::EC2::Instance', { ImageId: 'ami-0123456789abcdef0' });
    } finally {
      s.cleanup();
    }
  });
});
