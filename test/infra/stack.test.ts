// Assertions on the synthesized template, one synthesis per configuration (beforeAll).
import { existsSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
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
const secretReads = (s: Synthesized) =>
  policyStatements(s, 'ServerRole')
    .filter((st) => actionsOf(st).includes('secretsmanager:GetSecretValue'))
    .map((st) => st.Resource);
/** The lines between `cat > TARGET.tmp <<'END'` and END in the user data. */
const heredoc = (s: Synthesized, target: string) => {
  const text = userData(s);
  const open = `cat > ${target}.tmp <<'${HEREDOC_END}'\n`;
  const start = text.indexOf(open);
  expect(start, target).toBeGreaterThan(0);
  return text.slice(start + open.length, text.indexOf(`\n${HEREDOC_END}\n`, start));
};
const deploymentEnv = (s: Synthesized) => heredoc(s, '/opt/erp-image-search/deployment.env').split('\n');
const outputs = (s: Synthesized) =>
  Object.fromEntries(Object.entries(s.json.Outputs!).map(([key, output]) => [key, cfnText(output.Value)]));

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

  it('lets the instance read exactly its three secrets, and uses SSM instead of SSH', () => {
    expect(secretReads(s)).toEqual([
      { Ref: expect.stringMatching(/^ServerApiKey/) },
      { Ref: expect.stringMatching(/^ServerReadApiKey/) },
      { Ref: expect.stringMatching(/^ServerQdrantApiKey/) },
    ]);
    s.template.hasResourceProperties('AWS::IAM::Role', {
      ManagedPolicyArns: [
        { 'Fn::Join': ['', ['arn:', { Ref: 'AWS::Partition' }, ':iam::aws:policy/AmazonSSMManagedInstanceCore']] },
      ],
    });
    expect(instanceProps(s).KeyName).toBeUndefined();
  });

  it('generates the three keys in Secrets Manager and puts no secret value anywhere in the template', () => {
    const secrets = resourcesOfType(s, 'AWS::SecretsManager::Secret');
    expect(secrets).toHaveLength(3);
    for (const [, secret] of secrets) {
      expect(secret.Properties).toMatchObject({
        GenerateSecretString: { PasswordLength: 48, ExcludePunctuation: true },
      });
      expect(secret.Properties!.SecretString).toBeUndefined();
    }
    const text = JSON.stringify(s.json);
    expect(text).not.toMatch(/resolve:secretsmanager|"SecretString"\s*:|"SecretStringTemplate"/);
    // The user data passes secret ARNs only.
    expect(deploymentEnv(s).filter((line) => /^(OPERATOR_)?SECRET_/.test(line))).toEqual([
      expect.stringMatching(/^SECRET_IMAGE_SEARCH_API_KEY=<Ref:ServerApiKey\w+>$/),
      expect.stringMatching(/^SECRET_IMAGE_SEARCH_READ_KEY=<Ref:ServerReadApiKey\w+>$/),
      expect.stringMatching(/^SECRET_QDRANT_API_KEY=<Ref:ServerQdrantApiKey\w+>$/),
    ]);
    expect(userData(s)).not.toMatch(/^(IMAGE_SEARCH_API_KEY|IMAGE_SEARCH_READ_KEY|QDRANT_API_KEY)=/m);
  });

  it('user data: runs on every boot, writes bootstrap.sh byte for byte and the values, then runs it', () => {
    const text = userData(s);
    expect(text).toContain(
      `Content-Type: text/cloud-config; charset="utf-8"\n\n#cloud-config\n${JSON.stringify(CLOUD_CONFIG)}`,
    );
    expect(heredoc(s, '/opt/erp-image-search/bootstrap.sh') + '\n').toBe(
      readFileSync(path.join(ROOT, 'infra/user-data/bootstrap.sh'), 'utf8'),
    );
    expect(deploymentEnv(s)).toEqual([
      expect.stringMatching(/^VOLUME_ID=<Ref:DataVolume\w+>$/),
      'BACKUP_SCHEDULE=*-*-* 02:30:00',
      expect.stringMatching(/^SECRET_IMAGE_SEARCH_API_KEY=/),
      expect.stringMatching(/^SECRET_IMAGE_SEARCH_READ_KEY=/),
      expect.stringMatching(/^SECRET_QDRANT_API_KEY=/),
    ]);
    // Both files go to a temporary name first; the values are root-only.
    expect(text).toContain(
      'chmod 0600 /opt/erp-image-search/deployment.env.tmp && sync /opt/erp-image-search/deployment.env.tmp && ' +
        'mv -f /opt/erp-image-search/deployment.env.tmp /opt/erp-image-search/deployment.env',
    );
    const exec = text.split('\n').findLast((line) => line.startsWith('exec bash /opt'));
    expect(exec).toMatch(
      /^exec bash \/opt\/erp-image-search\/bootstrap\.sh 'eu-central-1' 's3:\/\/cdk-hnb659fds-assets-<AWS::AccountId>-eu-central-1\/[0-9a-f]{64}\.zip' '\/opt\/erp-image-search\/deployment\.env'$/,
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

  it('outputs the API and webhook URLs, instance, volume, secrets and the SSM command', () => {
    expect(outputs(s)).toEqual({
      ApiUrl: expect.stringMatching(/^http:\/\/<GetAtt:ServerAddress\w+\.PublicIp>:8020$/),
      ErpNextWebhookUrl: expect.stringMatching(
        /^http:\/\/<GetAtt:ServerAddress\w+\.PublicIp>:8020\/webhooks\/erpnext$/,
      ),
      InstanceId: expect.stringMatching(/^<Ref:ServerInstance/),
      DataVolumeId: expect.stringMatching(/^<Ref:DataVolume/),
      ApiKeySecretArn: expect.stringMatching(/^<Ref:ServerApiKey/),
      ReadKeySecretArn: expect.stringMatching(/^<Ref:ServerReadApiKey/),
      ReadApiKeyCommand: expect.stringMatching(/^aws secretsmanager get-secret-value --region eu-central-1 /),
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

  it('uses the existing API key secret and generates only the read and Qdrant keys', () => {
    expect(resourcesOfType(s, 'AWS::SecretsManager::Secret')).toHaveLength(2);
    expect(secretReads(s)).toContainEqual(`${existing}`);
    expect(deploymentEnv(s)).toContain(`SECRET_IMAGE_SEARCH_API_KEY=${existing}`);
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

describe('HTTPS deployment (domainName + hostedZoneId: certificate and DNS record made by the stack)', () => {
  let s: Synthesized;
  let plain: Synthesized;
  beforeAll(() => {
    s = synth({ allowedCidr: `${ERP},198.51.100.0/24`, domainName: 'api.example.com', hostedZoneId: 'Z123' });
    plain = synth({ allowedCidr: `${ERP},198.51.100.0/24` });
  });
  afterAll(() => {
    s?.cleanup();
    plain?.cleanup();
  });
  const resourceOf = (type: string) => {
    const found = resourcesOfType(s, type);
    expect(found, type).toHaveLength(1);
    return found[0];
  };
  const listener = (port: number) =>
    resourcesOfType(s, 'AWS::ElasticLoadBalancingV2::Listener').find(([, r]) => r.Properties!.Port === port)![1]
      .Properties!;

  it('serves 443 with the certificate, TLS 1.2+ only, and sends HSTS', () => {
    const [certificateId] = resourceOf('AWS::CertificateManager::Certificate');
    expect(listener(443)).toMatchObject({
      Protocol: 'HTTPS',
      Certificates: [{ CertificateArn: { Ref: certificateId } }],
      SslPolicy: 'ELBSecurityPolicy-TLS13-1-2-2021-06',
      ListenerAttributes: [
        { Key: 'routing.http.response.strict_transport_security.header_value', Value: 'max-age=31536000' },
      ],
    });
    s.template.hasResourceProperties('AWS::CertificateManager::Certificate', {
      DomainName: 'api.example.com',
      ValidationMethod: 'DNS',
      DomainValidationOptions: [{ DomainName: 'api.example.com', HostedZoneId: 'Z123' }],
    });
  });

  it('redirects HTTP on 80 to HTTPS with a 301', () => {
    expect(listener(80)).toMatchObject({
      Protocol: 'HTTP',
      DefaultActions: [
        { Type: 'redirect', RedirectConfig: { Protocol: 'HTTPS', Port: '443', StatusCode: 'HTTP_301' } },
      ],
    });
    expect(resourcesOfType(s, 'AWS::ElasticLoadBalancingV2::Listener')).toHaveLength(2);
  });

  it('forwards to the instance on 8020 and checks GET /health', () => {
    const [, group] = resourceOf('AWS::ElasticLoadBalancingV2::TargetGroup');
    expect(group.Properties).toMatchObject({
      Protocol: 'HTTP',
      Port: 8020,
      TargetType: 'instance',
      HealthCheckPath: '/health',
      Matcher: { HttpCode: '200' },
      Targets: [{ Id: { Ref: resourcesOfType(s, 'AWS::EC2::Instance')[0][0] }, Port: 8020 }],
    });
    expect(listener(443).DefaultActions).toEqual([{ Type: 'forward', TargetGroupArn: { Ref: expect.any(String) } }]);
  });

  it('opens 443 and 80 only to allowedCidr, and 8020 only to the load balancer: no public 8020', () => {
    const [albGroup] = resourcesOfType(s, 'AWS::EC2::SecurityGroup').find(([id]) => id.startsWith('Https'))!;
    const rules = ingressRules(s).map((rule) =>
      [
        rule.FromPort,
        rule.CidrIp ?? rule.CidrIpv6 ?? cfnText((rule.SourceSecurityGroupId as object) ?? 'none'),
        cfnText(rule.GroupId ?? `<inline>`),
      ].join(' '),
    );
    expect(rules.sort()).toEqual(
      [
        '443 203.0.113.10/32 <inline>',
        '80 203.0.113.10/32 <inline>',
        '443 198.51.100.0/24 <inline>',
        '80 198.51.100.0/24 <inline>',
        expect.stringMatching(
          new RegExp(`^8020 <GetAtt:${albGroup}\\.GroupId> <GetAtt:NetworkHostSecurityGroup\\w+\\.GroupId>$`),
        ),
      ].sort(),
    );
    expect(ingressRules(s).filter((rule) => rule.FromPort === 8020 && (rule.CidrIp || rule.CidrIpv6))).toEqual([]);
    expect(JSON.stringify(ingressRules(s))).not.toContain('0.0.0.0/0');
  });

  it('puts the load balancer in two zones and the instance, its subnet and its volume where they were', () => {
    const [, alb] = resourceOf('AWS::ElasticLoadBalancingV2::LoadBalancer');
    expect(alb.Properties).toMatchObject({ Scheme: 'internet-facing', Type: 'application' });
    const subnets = (alb.Properties!.Subnets as { Ref: string }[]).map((ref) => s.json.Resources[ref.Ref].Properties!);
    expect(subnets.map((subnet) => subnet.AvailabilityZone)).toEqual(['eu-central-1a', 'eu-central-1b']);
    expect(alb.Properties!.LoadBalancerAttributes).toEqual(
      expect.arrayContaining([
        { Key: 'routing.http.drop_invalid_header_fields.enabled', Value: 'true' },
        { Key: 'access_logs.s3.enabled', Value: 'true' },
      ]),
    );
    // Turning HTTPS on adds resources; the instance, the volume and the first subnet keep their ids and settings.
    for (const type of ['AWS::EC2::Instance', 'AWS::EC2::Volume', 'AWS::EC2::VPC']) {
      expect(
        resourcesOfType(s, type).map(([id]) => id),
        type,
      ).toEqual(resourcesOfType(plain, type).map(([id]) => id));
    }
    const [subnetId] = resourcesOfType(plain, 'AWS::EC2::Subnet')[0];
    expect(s.json.Resources[subnetId]).toEqual(plain.json.Resources[subnetId]);
    expect(instanceProps(s).SubnetId).toEqual({ Ref: subnetId });
  });

  it('keeps access logs in a private, encrypted, TLS-only bucket that expires them', () => {
    const [bucketId, bucket] = resourceOf('AWS::S3::Bucket');
    expect(bucket.Properties).toMatchObject({
      BucketEncryption: {
        ServerSideEncryptionConfiguration: [{ ServerSideEncryptionByDefault: { SSEAlgorithm: 'AES256' } }],
      },
      PublicAccessBlockConfiguration: {
        BlockPublicAcls: true,
        BlockPublicPolicy: true,
        IgnorePublicAcls: true,
        RestrictPublicBuckets: true,
      },
      LifecycleConfiguration: { Rules: [expect.objectContaining({ ExpirationInDays: 90, Status: 'Enabled' })] },
    });
    s.template.hasResourceProperties('AWS::S3::BucketPolicy', {
      Bucket: { Ref: bucketId },
      PolicyDocument: {
        Statement: Match.arrayWith([
          Match.objectLike({ Effect: 'Deny', Condition: { Bool: { 'aws:SecureTransport': 'false' } } }),
        ]),
      },
    });
  });

  it('points the domain at the load balancer (alias A record) and outputs the https URLs', () => {
    s.template.hasResourceProperties('AWS::Route53::RecordSet', {
      HostedZoneId: 'Z123',
      Name: 'api.example.com.',
      Type: 'A',
      AliasTarget: Match.objectLike({ HostedZoneId: { 'Fn::GetAtt': [Match.anyValue(), 'CanonicalHostedZoneID'] } }),
    });
    expect(outputs(s)).toMatchObject({
      ApiUrl: 'https://api.example.com',
      ErpNextWebhookUrl: 'https://api.example.com/webhooks/erpnext',
      LoadBalancerDnsName: expect.stringMatching(/^<GetAtt:HttpsLoadBalancer\w+\.DNSName>$/),
    });
    const warnings = s.assembly
      .getStackByName('ErpImageSearch')
      .messages.map((m) => JSON.stringify(m.entry.data))
      .join('\n');
    expect(warnings).not.toContain('TLS is off');
  });
});

describe('HTTPS with an existing certificate and no hosted zone', () => {
  const certificateArn = 'arn:aws:acm:eu-central-1:123456789012:certificate/12345678-1234-1234-1234-123456789012';
  let s: Synthesized;
  beforeAll(() => {
    s = synth({ allowedCidr: ERP, domainName: 'api.example.com', certificateArn });
  });
  afterAll(() => s?.cleanup());

  it('uses that certificate, creates no DNS record and says where to point the CNAME', () => {
    s.template.resourceCountIs('AWS::CertificateManager::Certificate', 0);
    s.template.resourceCountIs('AWS::Route53::RecordSet', 0);
    s.template.hasResourceProperties('AWS::ElasticLoadBalancingV2::Listener', {
      Port: 443,
      Certificates: [{ CertificateArn: certificateArn }],
    });
    expect(s.json.Outputs!.LoadBalancerDnsName).toMatchObject({
      Description: 'Point a CNAME for api.example.com at this name',
    });
  });
});

describe('ERPNext connector (erpnextUrl) and the service settings', () => {
  let s: Synthesized;
  beforeAll(() => {
    s = synth({
      allowedCidr: ERP,
      erpnextUrl: 'https://erp.example.com',
      corsOrigins: 'https://erp.example.com',
      erpnextItemFilters: '[["Item","disabled","=",0]]',
      erpnextSyncInterval: '15m',
      minConfidence: '0.35',
      logLevel: 'warn',
    });
  });
  afterAll(() => s?.cleanup());

  it('creates the three ERPNext secrets empty: no value, generated or written, is in the template', () => {
    const secrets = resourcesOfType(s, 'AWS::SecretsManager::Secret').filter(([id]) => id.startsWith('ServerErpNext'));
    expect(secrets.map(([id]) => id.replace(/[0-9A-F]{8}$/, ''))).toEqual([
      'ServerErpNextApiKey',
      'ServerErpNextApiSecret',
      'ServerErpNextWebhookSecret',
    ]);
    for (const [, secret] of secrets) {
      expect(Object.keys(secret.Properties!)).toEqual(['Description']);
    }
    expect(JSON.stringify(s.json)).not.toMatch(/"SecretString"|SecretStringTemplate|resolve:secretsmanager/);
  });

  it('lets the instance read exactly the six secrets it passes on', () => {
    expect(secretReads(s)).toEqual([
      { Ref: expect.stringMatching(/^ServerApiKey/) },
      { Ref: expect.stringMatching(/^ServerReadApiKey/) },
      { Ref: expect.stringMatching(/^ServerQdrantApiKey/) },
      { Ref: expect.stringMatching(/^ServerErpNextApiKey/) },
      { Ref: expect.stringMatching(/^ServerErpNextApiSecret/) },
      { Ref: expect.stringMatching(/^ServerErpNextWebhookSecret/) },
    ]);
    expect(Object.keys(outputs(s))).toEqual(
      expect.arrayContaining(['ErpNextApiKeySecretArn', 'ErpNextApiSecretSecretArn', 'ErpNextWebhookSecretArn']),
    );
  });

  it('passes the secrets by ARN and the plain settings by value in the user data', () => {
    expect(deploymentEnv(s).slice(5)).toEqual([
      expect.stringMatching(/^OPERATOR_SECRET_ERPNEXT_API_KEY=<Ref:ServerErpNextApiKey\w+>$/),
      expect.stringMatching(/^OPERATOR_SECRET_ERPNEXT_API_SECRET=<Ref:ServerErpNextApiSecret\w+>$/),
      expect.stringMatching(/^OPERATOR_SECRET_ERPNEXT_WEBHOOK_SECRET=<Ref:ServerErpNextWebhookSecret\w+>$/),
      'SETTING_CORS_ORIGINS=https://erp.example.com',
      'SETTING_ERPNEXT_URL=https://erp.example.com',
      'SETTING_ERPNEXT_ITEM_FILTERS=[["Item","disabled","=",0]]',
      'SETTING_ERPNEXT_SYNC_INTERVAL=15m',
      'SETTING_MIN_CONFIDENCE=0.35',
      'SETTING_LOG_LEVEL=warn',
    ]);
  });

  it('keeps a settings file that lives in the repository out of the app asset', () => {
    const file = path.join(ROOT, `deployment-vitest-${process.pid}.json`);
    writeFileSync(file, JSON.stringify({ allowedCidr: [ERP] }));
    const inRepo = synth({ settingsFile: file });
    try {
      const assetDir = path.join(inRepo.outdir, `asset.${/([0-9a-f]{64})\.zip/.exec(userData(inRepo))![1]}`);
      expect(existsSync(path.join(assetDir, 'docker-compose.yml'))).toBe(true);
      expect(existsSync(path.join(assetDir, path.basename(file)))).toBe(false);
    } finally {
      inRepo.cleanup();
      rmSync(file, { force: true });
    }
  });
});
