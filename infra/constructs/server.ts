// The host: one Ubuntu instance running the compose project (api + qdrant), its role, its secrets, the app
// delivered as an S3 asset, and a fixed public address.
//
// Secrets: the API key (or an existing secret), the read-only key for browsers and the Qdrant key are generated
// by Secrets Manager; the three ERPNext secrets (with erpnextUrl) are created empty, because only ERPNext knows
// their values: the operator puts them (README). The role may read exactly these secrets, and only their ARNs
// appear in the template and the user data.
//
// Instance replacement (new AMI pin, new subnet...) must never lose or deadlock the data volume, so there is
// no template-level attachment and no creation policy: the instance attaches the volume to itself at boot and
// retries until the previous instance has released it (infra/user-data/attach-data-volume.sh). Everyday
// changes (app, settings, instance type) do not replace the instance: user data changes make CloudFormation
// stop and start it, and cloud-init runs the new user data on that boot. The AMI is resolved by EC2 at launch
// (resolve:ssm), so a newer Ubuntu AMI never replaces a running instance by surprise.
import { fileURLToPath } from 'node:url';
import { Aws, Stack, Validations } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as s3assets from 'aws-cdk-lib/aws-s3-assets';
import * as secretsmanager from 'aws-cdk-lib/aws-secretsmanager';
import type { ISecret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import type { DeployConfig } from '../config.js';
import { bootUserData } from './boot-user-data.js';
import { CREATED_BY_COMMAND, CREATED_BY_TAG, DATA_VOLUME_TAG } from '../../service/src/lib/aws-tags.js';

/** The repository root: the app asset (the instance builds the image from it). */
export const APP_ROOT = fileURLToPath(new URL('../../', import.meta.url));
/** Kept out of the asset: host-installed modules, build output, local data and secrets, tests. */
export const APP_EXCLUDES = [
  'node_modules',
  'dist',
  'cdk.out',
  'data',
  'coverage',
  'test',
  '.git',
  '.env',
  '.env.*',
  'test-results.json',
  '*.onnx',
  '__pycache__',
];

export interface ServerProps {
  config: DeployConfig;
  vpc: ec2.IVpc;
  securityGroup: ec2.ISecurityGroup;
  volume: ec2.Volume;
  /** More paths (relative to the repository) kept out of the app asset, e.g. the settings file. */
  assetExcludes?: string[];
}

/** The secrets the api container gets, by environment name. */
export type ServerSecrets = {
  IMAGE_SEARCH_API_KEY: secretsmanager.ISecret;
  IMAGE_SEARCH_READ_KEY: secretsmanager.ISecret;
  QDRANT_API_KEY: secretsmanager.ISecret;
};
export type ErpNextSecrets = {
  ERPNEXT_API_KEY: secretsmanager.ISecret;
  ERPNEXT_API_SECRET: secretsmanager.ISecret;
  ERPNEXT_WEBHOOK_SECRET: secretsmanager.ISecret;
};

const ROTATE_BY_HAND =
  'A static key shared with ERPNext, browsers or Qdrant; rotation needs the other side updated too. Rotate by ' +
  'hand: put a new value, then reboot the instance (boot rewrites .env) - see the README.';

export class Server extends Construct {
  readonly instance: ec2.Instance;
  readonly role: iam.Role;
  readonly secrets: ServerSecrets;
  readonly erpNextSecrets?: ErpNextSecrets;
  readonly address: ec2.CfnEIP;

  constructor(scope: Construct, id: string, props: ServerProps) {
    super(scope, id);
    const { config, volume } = props;

    const generated = (id: string, description: string) => {
      const secret = new secretsmanager.Secret(this, id, {
        description,
        generateSecretString: { passwordLength: 48, excludePunctuation: true },
      });
      Validations.of(secret).acknowledge({ id: 'AwsSolutions::AwsSolutions-SMG4', reason: ROTATE_BY_HAND });
      return secret;
    };
    this.secrets = {
      IMAGE_SEARCH_API_KEY: config.apiKeySecretArn
        ? secretsmanager.Secret.fromSecretCompleteArn(this, 'ApiKey', config.apiKeySecretArn)
        : generated('ApiKey', 'API key of the ERP image search service (header Image-Search-Api-Key)'),
      IMAGE_SEARCH_READ_KEY: generated(
        'ReadApiKey',
        'Read-only API key of the ERP image search service (search and reading items; for browsers)',
      ),
      QDRANT_API_KEY: generated(
        'QdrantApiKey',
        'API key between the ERP image search API and its Qdrant (never leaves the host)',
      ),
    };
    if (config.erpnextUrl) {
      const empty = (id: string, description: string) => {
        const secret = new secretsmanager.Secret(this, id, { description });
        // No value at all (neither SecretString nor GenerateSecretString): the operator puts ERPNext's.
        (secret.node.defaultChild as secretsmanager.CfnSecret).addPropertyDeletionOverride('GenerateSecretString');
        Validations.of(secret).acknowledge({
          id: 'AwsSolutions::AwsSolutions-SMG4',
          reason:
            'The value is issued by ERPNext (API key pair, webhook secret) and must change there first; the ' +
            'operator puts the new value and reboots the instance - see the README.',
        });
        return secret;
      };
      this.erpNextSecrets = {
        ERPNEXT_API_KEY: empty('ErpNextApiKey', 'ERPNext API key (of a user who may read Item and File) - put it'),
        ERPNEXT_API_SECRET: empty('ErpNextApiSecret', 'ERPNext API secret of the same user - put it'),
        ERPNEXT_WEBHOOK_SECRET: empty(
          'ErpNextWebhookSecret',
          "The Webhook Secret of ERPNext's Webhook to /webhooks/erpnext - put it",
        ),
      };
    }

    const app = new s3assets.Asset(this, 'App', {
      path: APP_ROOT,
      exclude: [...APP_EXCLUDES, ...(props.assetExcludes ?? [])],
    });

    this.role = new iam.Role(this, 'Role', {
      assumedBy: new iam.ServicePrincipal('ec2.amazonaws.com'),
      description: 'ERP image search host: SSM, its app asset, its secrets, its data volume and snapshots',
    });

    const arns = (secrets: Record<string, ISecret> = {}) =>
      Object.fromEntries(Object.entries(secrets).map(([name, secret]) => [name, secret.secretArn]));
    const userData = bootUserData({
      region: Stack.of(this).region,
      assetUrl: app.s3ObjectUrl,
      volumeId: volume.volumeId,
      backupSchedule: config.backupSchedule,
      secrets: arns(this.secrets),
      operatorSecrets: arns(this.erpNextSecrets),
      settings: config.serviceEnv,
    });

    this.instance = new ec2.Instance(this, 'Instance', {
      vpc: props.vpc,
      vpcSubnets: { subnetType: ec2.SubnetType.PUBLIC, availabilityZones: [config.availabilityZone] },
      availabilityZone: config.availabilityZone,
      securityGroup: props.securityGroup,
      instanceType: new ec2.InstanceType(config.instanceType),
      machineImage: config.amiId
        ? ec2.MachineImage.genericLinux({ [config.region]: config.amiId })
        : ec2.MachineImage.resolveSsmParameterAtLaunch(config.amiParameterName, { os: ec2.OperatingSystemType.LINUX }),
      role: this.role,
      userData,
      userDataCausesReplacement: false,
      blockDevices: [
        {
          deviceName: '/dev/sda1', // Ubuntu's root device
          volume: ec2.BlockDeviceVolume.ebs(20, {
            volumeType: ec2.EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
      // IMDSv2 only. Hop limit 2: the api container (one network hop further) needs the role for the
      // ebs-snapshot command; any process in a container on this host can therefore use the role as well.
      httpEndpoint: true,
      httpTokens: ec2.HttpTokens.REQUIRED,
      httpPutResponseHopLimit: 2,
      ssmSessionPermissions: true,
      propagateTagsToVolumeOnCreation: true,
    });
    Validations.of(this.instance).acknowledge(
      config.amiId
        ? {
            id: 'CloudFormation-Validate::W9010',
            reason:
              'The operator pinned this AMI on purpose (-c amiId=...) to control when the instance is ' +
              'replaced; the default resolves the latest Ubuntu AMI instead.',
          }
        : {
            id: 'CloudFormation-Validate::E1152',
            reason:
              'ImageId resolve:ssm:<parameter> is resolved by EC2 at launch (RunInstances supports it); the ' +
              'format check only knows literal ami- ids.',
          },
    );
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions::AwsSolutions-EC28',
      reason:
        'Status-check metrics (the alarms) are per minute without detailed monitoring; five-minute CPU/network ' +
        'metrics suffice for one host.',
    });
    Validations.of(this.instance).acknowledge({
      id: 'AwsSolutions::AwsSolutions-EC29',
      reason:
        'API termination protection would stop CloudFormation from terminating the old instance during a ' +
        'replacement, so the new one could never take over the data volume. The state is on a retained, ' +
        'snapshotted volume and the stack has termination protection.',
    });

    app.grantRead(this.role);
    const secrets = [this.secrets, this.erpNextSecrets ?? {}].flatMap((group) => Object.values<ISecret>(group));
    for (const secret of secrets) {
      secret.grantRead(this.role);
    }
    volume.grantAttachVolumeByResourceTag(this.role, [this.instance]);
    this.grantSnapshots(config.stackName);
    this.acknowledgeRolePolicy();

    // A fixed address across stop/start and replacement: ERPNext keeps one URL.
    this.address = new ec2.CfnEIP(this, 'Address', { domain: 'vpc', instanceId: this.instance.instanceId });
  }

  /** What `ops.js ebs-snapshot` needs in the api container, and nothing more. */
  private grantSnapshots(stackName: string) {
    const region = Stack.of(this).region;
    const snapshots = `arn:${Aws.PARTITION}:ec2:${region}::snapshot/*`;
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'SnapshotTheDataVolume',
        actions: ['ec2:CreateSnapshot'],
        resources: [`arn:${Aws.PARTITION}:ec2:${region}:${Aws.ACCOUNT_ID}:volume/*`],
        conditions: { StringEquals: { [`aws:ResourceTag/${DATA_VOLUME_TAG}`]: stackName } },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'CreateTaggedSnapshots',
        actions: ['ec2:CreateSnapshot'],
        resources: [snapshots],
        conditions: { StringEquals: { [`aws:RequestTag/${CREATED_BY_TAG}`]: CREATED_BY_COMMAND } },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'TagSnapshotsAtCreation',
        actions: ['ec2:CreateTags'],
        resources: [snapshots],
        conditions: { StringEquals: { 'ec2:CreateAction': 'CreateSnapshot' } },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DeleteOwnSnapshots',
        actions: ['ec2:DeleteSnapshot'],
        resources: [snapshots],
        conditions: { StringEquals: { [`aws:ResourceTag/${CREATED_BY_TAG}`]: CREATED_BY_COMMAND } },
      }),
    );
    this.role.addToPolicy(
      new iam.PolicyStatement({
        sid: 'DescribeVolumesAndSnapshots',
        actions: ['ec2:DescribeSnapshots', 'ec2:DescribeVolumes'],
        resources: ['*'],
      }),
    );
  }

  private acknowledgeRolePolicy() {
    Validations.of(this.role).acknowledge({
      id: 'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/AmazonSSMManagedInstanceCore]',
      reason:
        'AmazonSSMManagedInstanceCore is the AWS-maintained minimum for Session Manager, which replaces SSH here.',
    });
    const ASSET_READ =
      'Read-only access to the CDK asset bucket as generated by Asset.grantRead; the bucket holds deployment ' +
      'assets, no data.';
    const wildcards: [string, string][] = [
      ['Action::s3:GetBucket*', ASSET_READ],
      ['Action::s3:GetObject*', ASSET_READ],
      ['Action::s3:List*', ASSET_READ],
      [
        'Resource::arn:<AWS::Partition>:s3:::cdk-hnb659fds-assets-<AWS::AccountId>-' + Stack.of(this).region + '/*',
        'Objects of the CDK asset bucket: asset keys are content hashes unknown until synthesis.',
      ],
      [
        'Resource::arn:<AWS::Partition>:ec2:' + Stack.of(this).region + ':<AWS::AccountId>:instance/*',
        "AttachVolume on instances, limited by condition to the one carrying this stack's VolumeGrantAttach " +
          'tag (the instance id cannot be named without a circular dependency).',
      ],
      [
        'Resource::arn:<AWS::Partition>:ec2:' + Stack.of(this).region + ':<AWS::AccountId>:volume/*',
        'CreateSnapshot on volumes, limited by condition to the volume tagged erp-image-search:data-volume=<stack>.',
      ],
      [
        'Resource::arn:<AWS::Partition>:ec2:' + Stack.of(this).region + '::snapshot/*',
        'Snapshot ids do not exist before creation; create/tag/delete are limited by tag and create-action conditions.',
      ],
      ['Resource::*', 'ec2:DescribeSnapshots and ec2:DescribeVolumes support no resource-level permissions.'],
    ];
    for (const [finding, reason] of wildcards) {
      Validations.of(this.role).acknowledge({ id: `AwsSolutions::AwsSolutions-IAM5[${finding}]`, reason });
    }
  }
}
