// One stack, composed of one construct per concern. All settings come from the validated config.
import { Annotations, App, CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import { loadConfig, type DeployConfig } from './config.js';
import { Alarms } from './constructs/alarms.js';
import { Backups } from './constructs/backups.js';
import { DataVolume } from './constructs/data-volume.js';
import { API_PORT, Network } from './constructs/network.js';
import { Server } from './constructs/server.js';

export interface ImageSearchStackProps extends StackProps {
  config: DeployConfig;
}

export class ImageSearchStack extends Stack {
  readonly network: Network;
  readonly data: DataVolume;
  readonly server: Server;
  readonly backups: Backups;
  readonly alarms: Alarms;

  constructor(scope: Construct, id: string, props: ImageSearchStackProps) {
    const { config } = props;
    super(scope, id, {
      ...props,
      terminationProtection: config.terminationProtection,
      description: 'ERP image search: Fastify API + Qdrant on one EC2 instance with a retained data volume',
    });

    this.network = new Network(this, 'Network', {
      availabilityZone: config.availabilityZone,
      allowedCidrs: config.allowedCidr,
      sshCidr: config.sshCidr,
    });
    this.data = new DataVolume(this, 'Data', {
      availabilityZone: config.availabilityZone,
      sizeGiB: config.dataVolumeGiB,
      removalPolicy: config.dataVolumeRemovalPolicy,
      stackName: config.stackName,
    });
    this.server = new Server(this, 'Server', {
      config,
      vpc: this.network.vpc,
      securityGroup: this.network.securityGroup,
      volume: this.data.volume,
    });
    this.backups = new Backups(this, 'Backups', {
      stackName: config.stackName,
      time: config.snapshotTime,
      retainCount: config.snapshotRetainCount,
    });
    this.alarms = new Alarms(this, 'Alarms', { instance: this.server.instance, email: config.alarmEmail });

    if (config.allowedCidr.some((cidr) => cidr.endsWith('/0'))) {
      Validations.of(this.network.securityGroup).acknowledge({
        id: 'AwsSolutions::AwsSolutions-EC23',
        reason: 'The operator forced an open API port with -c allowAnyCidr=true; requests still need the API key.',
      });
    }
    for (const warning of config.warnings) Annotations.of(this).addWarningV2('erp-image-search:config', warning);

    const instanceId = this.server.instance.instanceId;
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    output(
      'ApiUrl',
      `http://${this.server.address.attrPublicIp}:${API_PORT}`,
      'Base URL ERPNext calls (send header Image-Search-Api-Key)',
    );
    output('InstanceId', instanceId, 'The EC2 instance');
    output('DataVolumeId', this.data.volume.volumeId, 'The retained data volume (images, Qdrant, backups)');
    output('ApiKeySecretArn', this.server.apiKey.secretArn, 'Secrets Manager secret holding the API key');
    output(
      'ReadApiKeyCommand',
      `aws secretsmanager get-secret-value --region ${this.region} --secret-id ${this.server.apiKey.secretArn} ` +
        `--query SecretString --output text`,
      'Prints the API key',
    );
    output(
      'SsmStartSessionCommand',
      `aws ssm start-session --region ${this.region} --target ${instanceId}`,
      'Opens a shell on the instance (no SSH needed)',
    );
  }
}

/** Reads the context of `app`, adds the stack and the cdk-nag AwsSolutions checks. */
export function buildApp(app: App): ImageSearchStack {
  const config = loadConfig((key) => app.node.tryGetContext(key));
  const stack = new ImageSearchStack(app, config.stackName, {
    config,
    // The region follows the pinned AZ; the account comes from the CLI's credentials when there are any
    // (none are needed to synthesize).
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: config.region },
  });
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return stack;
}
