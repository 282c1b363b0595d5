// One stack, composed of one construct per concern. All settings come from the validated configuration, which
// the deployment's settings file and `-c key=value` give (infra/settings.ts).
import path from 'node:path';
import { Annotations, App, CfnOutput, Stack, Validations, type StackProps } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { Construct } from 'constructs';
import type { DeployConfig } from './config.js';
import { Alarms } from './constructs/alarms.js';
import { Backups } from './constructs/backups.js';
import { DataVolume } from './constructs/data-volume.js';
import { HttpsEndpoint } from './constructs/https.js';
import { API_PORT, Network } from './constructs/network.js';
import { APP_ROOT, Server } from './constructs/server.js';
import { resolveSettings, type Settings } from './settings.js';

/** The path of the webhook ERPNext calls (service route). */
export const WEBHOOK_PATH = '/webhooks/erpnext';

export interface ImageSearchStackProps extends StackProps {
  config: DeployConfig;
  /** The settings file: kept out of the app asset (a changed setting must not look like a new app). */
  settingsFile?: string;
}

export class ImageSearchStack extends Stack {
  readonly network: Network;
  readonly data: DataVolume;
  readonly server: Server;
  readonly https?: HttpsEndpoint;
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
      availabilityZones: [config.availabilityZone, ...(config.tls ? [config.tls.secondAvailabilityZone] : [])],
      apiCidrs: config.tls ? [] : config.allowedCidr,
      sshCidr: config.sshCidr,
    });
    this.data = new DataVolume(this, 'Data', {
      availabilityZone: config.availabilityZone,
      sizeGiB: config.dataVolumeGiB,
      removalPolicy: config.dataVolumeRemovalPolicy,
      stackName: config.stackName,
    });
    const settingsInRepo = props.settingsFile && path.relative(APP_ROOT, props.settingsFile);
    this.server = new Server(this, 'Server', {
      config,
      vpc: this.network.vpc,
      securityGroup: this.network.securityGroup,
      volume: this.data.volume,
      assetExcludes: settingsInRepo && !settingsInRepo.startsWith('..') ? [settingsInRepo] : [],
    });
    if (config.tls) {
      this.https = new HttpsEndpoint(this, 'Https', {
        tls: config.tls,
        vpc: this.network.vpc,
        subnets: this.network.vpc.publicSubnets,
        instance: this.server.instance,
        instanceSecurityGroup: this.network.securityGroup,
        allowedCidrs: config.allowedCidr,
      });
    }
    this.backups = new Backups(this, 'Backups', {
      stackName: config.stackName,
      time: config.snapshotTime,
      retainCount: config.snapshotRetainCount,
    });
    this.alarms = new Alarms(this, 'Alarms', { instance: this.server.instance, email: config.alarmEmail });

    if (config.allowedCidr.some((cidr) => cidr.endsWith('/0'))) {
      Validations.of(this.https?.securityGroup ?? this.network.securityGroup).acknowledge({
        id: 'AwsSolutions::AwsSolutions-EC23',
        reason: 'The operator forced an open API port with -c allowAnyCidr=true; requests still need the API key.',
      });
    }
    for (const warning of config.warnings) Annotations.of(this).addWarningV2('erp-image-search:config', warning);
    this.outputs(config);
  }

  private outputs(config: DeployConfig) {
    const output = (id: string, value: string, description: string) => new CfnOutput(this, id, { value, description });
    const instanceId = this.server.instance.instanceId;
    const apiUrl = this.https?.url ?? `http://${this.server.address.attrPublicIp}:${API_PORT}`;
    output('ApiUrl', apiUrl, 'Base URL ERPNext calls (send header Image-Search-Api-Key)');
    output('ErpNextWebhookUrl', `${apiUrl}${WEBHOOK_PATH}`, "URL of ERPNext's Webhook (POST, with the Webhook Secret)");
    if (this.https) {
      output(
        'LoadBalancerDnsName',
        this.https.loadBalancer.loadBalancerDnsName,
        config.tls?.hostedZoneId
          ? 'The load balancer (the DNS record of the domain points here)'
          : `Point a CNAME for ${config.tls?.domainName} at this name`,
      );
    }
    output('InstanceId', instanceId, 'The EC2 instance');
    output('DataVolumeId', this.data.volume.volumeId, 'The retained data volume (images, models, Qdrant, backups)');
    const apiKeyArn = this.server.secrets.IMAGE_SEARCH_API_KEY.secretArn;
    output('ApiKeySecretArn', apiKeyArn, 'Secrets Manager secret holding the API key (full access)');
    output(
      'ReadKeySecretArn',
      this.server.secrets.IMAGE_SEARCH_READ_KEY.secretArn,
      'Secret holding the read-only key (search and reading items; for browsers)',
    );
    output(
      'ReadApiKeyCommand',
      `aws secretsmanager get-secret-value --region ${this.region} --secret-id ${apiKeyArn} ` +
        `--query SecretString --output text`,
      'Prints the API key',
    );
    const erp = this.server.erpNextSecrets;
    if (erp) {
      output('ErpNextApiKeySecretArn', erp.ERPNEXT_API_KEY.secretArn, 'Put the ERPNext API key here');
      output('ErpNextApiSecretSecretArn', erp.ERPNEXT_API_SECRET.secretArn, 'Put the ERPNext API secret here');
      output('ErpNextWebhookSecretArn', erp.ERPNEXT_WEBHOOK_SECRET.secretArn, "Put the ERPNext Webhook's secret here");
    }
    output(
      'SsmStartSessionCommand',
      `aws ssm start-session --region ${this.region} --target ${instanceId}`,
      'Opens a shell on the instance (no SSH needed)',
    );
  }
}

export interface BuiltApp {
  stack: ImageSearchStack;
  settings: Settings;
}

/**
 * Reads the deployment's settings (file + context of `app`), adds the stack and the cdk-nag AwsSolutions checks.
 * The caller synthesizes, then saves the settings (only a synthesis that passed its checks is remembered).
 */
export function buildApp(app: App): BuiltApp {
  const settings = resolveSettings((key) => app.node.tryGetContext(key));
  const { config } = settings;
  const stack = new ImageSearchStack(app, config.stackName, {
    config,
    settingsFile: settings.file,
    // The region follows the pinned AZ; the account comes from the CLI's credentials when there are any
    // (none are needed to synthesize).
    env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: config.region },
  });
  for (const message of settings.closing) Annotations.of(stack).addWarningV2('erp-image-search:closing', message);
  Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
  return { stack, settings };
}
