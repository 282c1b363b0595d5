// Deployment configuration: the deployment's saved settings (infra/settings.ts) overridden by CDK context
// (`-c key=value`) → one typed, validated object. Every key is declared once in FIELDS (parser, default,
// description, and for the service's own settings the environment variable it becomes); all problems are
// reported together. Values from `-c` arrive as strings, saved values as JSON types: parsers accept both.
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import ipaddr from 'ipaddr.js';

export class ConfigError extends Error {
  override name = 'ConfigError';
}

type Parser<T> = (raw: unknown, key: string) => T;

interface Field<T> {
  parse: Parser<T>;
  /** Used when the key is absent or empty; fields without one are optional (undefined). */
  default?: T;
  doc: string;
  /** A setting of the service itself: the environment variable the api container gets (on EC2 via .env). */
  env?: { name: string; format?(value: T): string };
}

const fail = (key: string, message: string): never => {
  throw new ConfigError(`${key}: ${message}`);
};

const text =
  (pattern: RegExp, hint: string): Parser<string> =>
  (raw, key) => {
    const value = String(raw).trim();
    return pattern.test(value) ? value : fail(key, `${JSON.stringify(raw)} is not ${hint}.`);
  };

const oneOf =
  <T extends string>(...choices: T[]): Parser<T> =>
  (raw, key) => {
    const value = String(raw).trim() as T;
    return choices.includes(value)
      ? value
      : fail(key, `must be one of ${choices.join(', ')} (got ${JSON.stringify(raw)}).`);
  };

const integer =
  (min: number, max: number): Parser<number> =>
  (raw, key) => {
    const value = typeof raw === 'number' ? raw : /^\s*\d+\s*$/.test(String(raw)) ? Number(raw) : NaN;
    return Number.isInteger(value) && value >= min && value <= max
      ? value
      : fail(key, `must be a whole number from ${min} to ${max} (got ${JSON.stringify(raw)}).`);
  };

const fraction: Parser<number> = (raw, key) => {
  const value = typeof raw === 'number' ? raw : /^\s*(0|1)?(\.\d+)?\s*$/.test(String(raw)) ? Number(raw) : NaN;
  return Number.isFinite(value) && value >= 0 && value <= 1 && String(raw).trim() !== ''
    ? value
    : fail(key, `must be a number from 0 to 1 such as 0.35 (got ${JSON.stringify(raw)}).`);
};

const boolean: Parser<boolean> = (raw, key) => {
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  return fail(key, `must be true or false (got ${JSON.stringify(raw)}).`);
};

/** Splits `a,b` from -c and takes arrays from the settings file; blanks and duplicates are dropped. */
const listOf =
  (item: (raw: string, key: string) => string): Parser<string[]> =>
  (raw, key) => {
    const parts = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
    const items = parts
      .map((part) => part.trim())
      .filter((part) => part.length > 0)
      .map((part) => item(part, key));
    return [...new Set(items)];
  };

/** One CIDR in canonical form (host bits zero), IPv4 or IPv6. */
function canonicalCidr(raw: string, key: string): string {
  const value = raw.trim();
  const isV4 = ipaddr.IPv4.isValidCIDRFourPartDecimal(value);
  if (!isV4 && !(value.includes(':') && ipaddr.IPv6.isValidCIDR(value))) {
    return fail(key, `${JSON.stringify(raw)} is not a CIDR such as 203.0.113.10/32 or 2001:db8::/64.`);
  }
  const [address, prefix] = ipaddr.parseCIDR(value);
  const network = isV4 ? ipaddr.IPv4.networkAddressFromCIDR(value) : ipaddr.IPv6.networkAddressFromCIDR(value);
  if (network.toNormalizedString() !== address.toNormalizedString()) {
    return fail(key, `${value} has host bits set; did you mean ${network.toString()}/${prefix}?`);
  }
  return `${network.toString()}/${prefix}`;
}

const isAnyAddress = (cidr: string) => cidr.endsWith('/0');

const cidr: Parser<string> = (raw, key) => {
  const value = canonicalCidr(String(raw), key);
  return isAnyAddress(value)
    ? fail(key, `${value} would open the port to the whole internet; give your own address range.`)
    : value;
};

/** A lower-case DNS name of at least two labels (no wildcard: the certificate is for exactly this name). */
const hostname = text(
  /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]([a-z0-9-]{0,61}[a-z0-9])?$/,
  'a DNS name such as api.example.com (lower case, no wildcard, no scheme)',
);

/** An http(s) URL without credentials, query or fragment, as the service will use it (no trailing slash). */
const httpUrl =
  (what: string, pathAllowed: boolean) =>
  (raw: string, key: string): string => {
    let url: URL;
    try {
      url = new URL(raw.trim());
    } catch {
      return fail(key, `${JSON.stringify(raw)} is not a URL; give ${what}.`);
    }
    const okScheme = url.protocol === 'https:' || url.protocol === 'http:';
    const plain = !url.username && !url.password && !url.search && !url.hash;
    const value = pathAllowed ? url.href.replace(/\/+$/, '') : url.origin;
    return okScheme && plain && (pathAllowed || url.pathname === '/') && !/['\s]/.test(value)
      ? value
      : fail(key, `${JSON.stringify(raw)} must be ${what} (http or https, no credentials, query or quotes).`);
  };

/** Any JSON value, kept compact; a quote becomes \u0027 (same JSON) so the value fits a quoted .env line. */
const json: Parser<string> = (raw, key) => {
  let value: unknown = raw;
  if (typeof raw === 'string') {
    try {
      value = JSON.parse(raw);
    } catch {
      return fail(key, `${JSON.stringify(raw)} is not JSON, e.g. [["Item","disabled","=",0]] (quote it in the shell).`);
    }
  }
  return typeof value === 'object' && value !== null
    ? JSON.stringify(value).replace(/'/g, '\\u0027')
    : fail(key, 'must be a JSON list or object of ERPNext filters, e.g. [["Item","disabled","=",0]].');
};

// Ubuntu's AMIs are published by Canonical under /aws/service/canonical/ubuntu/server/RELEASE/stable/current/
// ARCH/hvm/VOLUME/ami-id; 22.04 images are built on gp2 roots, 24.04 on gp3.
export const UBUNTU_RELEASES = { '22.04': 'ebs-gp2', '24.04': 'ebs-gp3' } as const;
export type UbuntuRelease = keyof typeof UBUNTU_RELEASES;
const UBUNTU_ARCH: Record<ec2.InstanceArchitecture, 'arm64' | 'amd64'> = {
  [ec2.InstanceArchitecture.ARM_64]: 'arm64',
  [ec2.InstanceArchitecture.X86_64]: 'amd64',
};

const instanceType: Parser<string> = (raw, key) => {
  const value = String(raw).trim();
  try {
    void new ec2.InstanceType(value).architecture; // throws for malformed names
  } catch {
    return fail(key, `${JSON.stringify(raw)} is not an EC2 instance type such as t4g.medium or t3.medium.`);
  }
  return value;
};

const AZ = /^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/;
const AZ_HINT = 'an availability zone such as eu-central-1a';
const regionOf = (zone: string) => zone.slice(0, -1);

/** Where the data volume keeps the models (docker-compose.yml mounts it into the api container). */
export const MODELS_DIR = '/data/models';

export const FIELDS = {
  stackName: {
    parse: text(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'a stack name (letters, digits, hyphens)'),
    default: 'ErpImageSearch',
    doc: 'CloudFormation stack name; also the value of the data volume tag. Fixed after the first deploy.',
  },
  availabilityZone: {
    parse: text(AZ, AZ_HINT),
    default: 'eu-central-1a',
    doc:
      'The one AZ of the instance and its data volume (a volume attaches only within its AZ). The region ' +
      'follows from it. Fixed after the first deploy.',
  },
  allowedCidr: {
    parse: listOf(canonicalCidr),
    default: [] as string[],
    doc:
      "CIDR(s), comma-separated, allowed to reach the API (8020, or 443 with TLS): ERPNext's server and the " +
      "clerks' networks (browsers using the read key). Empty: the port stays closed.",
  },
  allowAnyCidr: { parse: boolean, default: false, doc: 'Must be true to accept 0.0.0.0/0 or ::/0 in allowedCidr.' },
  sshCidr: { parse: cidr, doc: 'Opens port 22 to this CIDR. Default: no SSH at all (use SSM Session Manager).' },
  domainName: {
    parse: hostname,
    doc:
      'Turns on HTTPS: the API answers on https://DOMAIN (443, a load balancer with an ACM certificate; 80 ' +
      'redirects) and 8020 closes to the outside. Needs hostedZoneId or certificateArn.',
  },
  hostedZoneId: {
    parse: text(/^Z[A-Z0-9]{1,31}$/, 'a Route 53 hosted zone id such as Z0123456789ABCDEFGHIJ'),
    doc:
      'Public Route 53 zone of domainName: the stack creates the certificate (validated by DNS in this zone) ' +
      'and the DNS record.',
  },
  certificateArn: {
    parse: text(
      /^arn:aws[a-z-]*:acm:[a-z0-9-]+:\d{12}:certificate\/[0-9a-f-]{36}$/,
      'an ACM certificate ARN (arn:aws:acm:REGION:ACCOUNT:certificate/ID)',
    ),
    doc: 'An existing ACM certificate for domainName in the stack region (instead of creating one).',
  },
  secondAvailabilityZone: {
    parse: text(AZ, AZ_HINT),
    doc:
      'With HTTPS: the second zone the load balancer needs (nothing else runs there). Default: zone b of the ' +
      'region, or a when availabilityZone is b.',
  },
  instanceType: {
    parse: instanceType,
    default: 't4g.medium',
    doc: 'EC2 instance type; the AMI architecture follows it (t4g → arm64, t3 → amd64).',
  },
  ubuntuRelease: {
    parse: oneOf(...(Object.keys(UBUNTU_RELEASES) as UbuntuRelease[])),
    default: '22.04',
    doc: 'Ubuntu LTS release of the AMI.',
  },
  amiId: {
    parse: text(/^ami-[0-9a-f]{8,17}$/, 'an AMI id such as ami-0123456789abcdef0'),
    doc: 'Pins an exact AMI instead of the latest Ubuntu one. Changing it replaces the instance (see the runbook).',
  },
  dataVolumeGiB: {
    parse: integer(20, 50),
    default: 30,
    doc: 'Size of the gp3 data volume in GiB (20-50). It can grow later, never shrink.',
  },
  dataVolumeRemovalPolicy: {
    parse: oneOf('retain', 'snapshot'),
    default: 'retain',
    doc: 'What happens to the data volume when it leaves the stack: kept as is, or deleted after a final snapshot.',
  },
  apiKeySecretArn: {
    parse: text(
      /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+$/,
      'a Secrets Manager secret ARN',
    ),
    doc: 'Use this existing secret (plain text) as the API key instead of generating one.',
  },
  backupSchedule: {
    parse: text(/^[A-Za-z0-9*:,./~ -]{1,100}$/, 'a systemd OnCalendar expression such as "*-*-* 02:30:00"'),
    default: '*-*-* 02:30:00',
    doc: 'When the host timer runs the Qdrant snapshot backup (systemd OnCalendar, instance time = UTC).',
  },
  snapshotTime: {
    parse: text(/^([01]\d|2[0-3]):[0-5]\d$/, 'a UTC time HH:MM'),
    default: '03:00',
    doc: 'Daily time (UTC) of the EBS snapshot of the data volume (Data Lifecycle Manager).',
  },
  snapshotRetainCount: { parse: integer(1, 1000), default: 7, doc: 'How many daily EBS snapshots are kept.' },
  alarmEmail: {
    parse: text(/^[^\s@]+@[^\s@]+\.[^\s@]+$/, 'an e-mail address'),
    doc: 'Sends the alarms to this address (SNS; confirm the subscription mail).',
  },
  terminationProtection: { parse: boolean, default: true, doc: 'CloudFormation termination protection of the stack.' },
  corsOrigins: {
    parse: listOf(httpUrl('an origin such as https://erp.example.com', false)),
    default: [] as string[],
    doc: "Origins allowed by CORS, comma-separated (ERPNext's desk URL for its find-by-photo button).",
    env: { name: 'CORS_ORIGINS', format: (origins: string[]) => origins.join(',') },
  },
  erpnextUrl: {
    parse: (raw, key) => httpUrl('the base URL of ERPNext such as https://erp.example.com', true)(String(raw), key),
    doc:
      'Turns on the ERPNext connector: the stack creates the three ERPNext secrets (empty until you put ' +
      'their values) and the instance passes them to the service.',
    env: { name: 'ERPNEXT_URL' },
  },
  erpnextItemFilters: {
    parse: json,
    doc: 'Which ERPNext items are synced, as ERPNext filters in JSON, e.g. [["Item","disabled","=",0]].',
    env: { name: 'ERPNEXT_ITEM_FILTERS' },
  },
  erpnextSyncInterval: {
    parse: text(/^(0|[1-9]\d{0,5}[smh])$/, 'an interval such as 15m, 1h or 30s (0 = off)'),
    doc: 'How often the service syncs items from ERPNext (e.g. 15m; 0 = only webhooks).',
    env: { name: 'ERPNEXT_SYNC_INTERVAL' },
  },
  minConfidence: {
    parse: fraction,
    doc: 'Lowest search score (0-1) the service reports as a match.',
    env: { name: 'MIN_CONFIDENCE', format: String },
  },
  logLevel: {
    parse: oneOf('fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'),
    doc: 'Log level of the service (default info).',
    env: { name: 'LOG_LEVEL' },
  },
  modelFile: {
    parse: text(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}\.onnx$/, 'a model file name such as efficientnet_b0.onnx'),
    doc:
      `The model the API starts with: a file in ${MODELS_DIR} on the data volume (its NAME.json beside it). ` +
      'Default: the model baked into the image, efficientnet_b0.onnx. Set it after a model migration.',
    env: { name: 'MODEL_PATH', format: (file: string) => `${MODELS_DIR}/${file}` },
  },
} satisfies Record<string, Field<unknown>>;

type Fields = typeof FIELDS;
export type FieldName = keyof Fields;
type ValueOf<K extends FieldName> = ReturnType<Fields[K]['parse']>;
type Defaulted = { [K in FieldName]: Fields[K] extends { default: unknown } ? K : never }[FieldName];

export type ContextValues = { [K in Defaulted]: ValueOf<K> } & { [K in Exclude<FieldName, Defaulted>]?: ValueOf<K> };

/** HTTPS in front of the API (an Application Load Balancer with an ACM certificate). */
export interface TlsConfig {
  domainName: string;
  hostedZoneId?: string;
  certificateArn?: string;
  /** The load balancer's second zone (ALBs need subnets in two zones). */
  secondAvailabilityZone: string;
}

export type DeployConfig = ContextValues & {
  /** Region of availabilityZone. */
  region: string;
  architecture: 'arm64' | 'amd64';
  /** Public SSM parameter holding the current Ubuntu AMI for this release and architecture. */
  amiParameterName: string;
  tls?: TlsConfig;
  /** Environment of the api container from the service settings that are set (name → value). */
  serviceEnv: Record<string, string>;
  /** Problems that do not stop synthesis (shown as warnings on the stack). */
  warnings: string[];
};

/** A second zone for the load balancer: b, or a when the instance is in b. Overridable per deployment. */
const defaultSecondZone = (zone: string) => `${regionOf(zone)}${zone.endsWith('b') ? 'a' : 'b'}`;

function crossChecks(context: ContextValues, problems: string[]) {
  const region = regionOf(context.availabilityZone);
  if (context.allowedCidr.some(isAnyAddress) && !context.allowAnyCidr) {
    problems.push(
      "allowedCidr: 0.0.0.0/0 or ::/0 opens the API to the whole internet; give ERPNext's address range, or " +
        'add -c allowAnyCidr=true if you really mean it.',
    );
  }
  if (context.domainName && !context.hostedZoneId && !context.certificateArn) {
    problems.push(
      'domainName: HTTPS needs a certificate: add -c hostedZoneId=<Route 53 zone of the domain> (the stack ' +
        'creates the certificate and the DNS record) or -c certificateArn=<ACM certificate in ' +
        `${region}>.`,
    );
  }
  for (const key of ['hostedZoneId', 'certificateArn', 'secondAvailabilityZone'] as const) {
    if (context[key] && !context.domainName) problems.push(`${key}: only used with HTTPS; add -c domainName=...`);
  }
  const certRegion = context.certificateArn?.split(':')[3];
  if (certRegion && certRegion !== region) {
    problems.push(
      `certificateArn: the certificate is in ${certRegion}, but a load balancer in ${region} can only use ` +
        `a certificate of its own region; request or import one in ${region}.`,
    );
  }
  const second = context.secondAvailabilityZone;
  if (second && (regionOf(second) !== region || second === context.availabilityZone)) {
    problems.push(`secondAvailabilityZone: must be another zone of ${region} than ${context.availabilityZone}.`);
  }
}

function warningsFor(config: DeployConfig): string[] {
  const warnings: string[] = [];
  const port = config.tls ? '443' : '8020';
  if (!config.allowedCidr.length) {
    warnings.push(
      `allowedCidr is not set: port ${port} stays closed. Deploy with -c allowedCidr=<ERPNext address>/32 ` +
        "(and the clerks' networks) to let ERPNext in.",
    );
  }
  if (!config.tls) {
    warnings.push(
      'TLS is off: the API key travels as plain HTTP on port 8020, readable by anyone on the path, and ' +
        'browsers on an https ERPNext page refuse to call it. Add -c domainName=api.example.com ' +
        '-c hostedZoneId=<Route 53 zone> (README: Deploy, HTTPS).',
    );
  }
  if (config.erpnextUrl?.startsWith('http:')) {
    warnings.push('erpnextUrl is plain http: the ERPNext API key and secret travel unencrypted.');
  }
  return warnings;
}

/** Reads and checks every key; `lookup` gives the value of a key (saved settings overridden by context). */
export function loadConfig(lookup: (key: string) => unknown): DeployConfig {
  const values: Record<string, unknown> = {};
  const problems: string[] = [];
  for (const [key, field] of Object.entries(FIELDS) as [string, Field<unknown>][]) {
    const raw = lookup(key);
    if (raw === undefined || raw === null || raw === '') {
      values[key] = field.default;
      continue;
    }
    try {
      values[key] = field.parse(raw, key);
    } catch (error) {
      problems.push(error instanceof Error ? error.message : String(error));
    }
  }
  const context = values as ContextValues;
  if (!problems.length) crossChecks(context, problems);
  if (problems.length) {
    throw new ConfigError(`Invalid deployment configuration:\n- ${problems.join('\n- ')}`);
  }

  const architecture = UBUNTU_ARCH[new ec2.InstanceType(context.instanceType).architecture];
  const serviceEnv: Record<string, string> = {};
  for (const [key, field] of Object.entries(FIELDS) as [string, Field<unknown>][]) {
    const value = values[key];
    if (!field.env || value === undefined || (Array.isArray(value) && !value.length)) continue;
    const plain = typeof value === 'string' ? value : JSON.stringify(value);
    serviceEnv[field.env.name] = field.env.format ? field.env.format(value) : plain;
  }
  const config: DeployConfig = {
    ...context,
    region: regionOf(context.availabilityZone),
    architecture,
    amiParameterName:
      `/aws/service/canonical/ubuntu/server/${context.ubuntuRelease}/stable/current/${architecture}` +
      `/hvm/${UBUNTU_RELEASES[context.ubuntuRelease]}/ami-id`,
    tls: context.domainName
      ? {
          domainName: context.domainName,
          hostedZoneId: context.hostedZoneId,
          certificateArn: context.certificateArn,
          secondAvailabilityZone: context.secondAvailabilityZone ?? defaultSecondZone(context.availabilityZone),
        }
      : undefined,
    serviceEnv,
    warnings: [],
  };
  config.warnings = warningsFor(config);
  return config;
}

/** `tcp/<port> from <cidr>` for every way into the API from outside; what a change removes closes. */
export function apiExposure(config: DeployConfig): string[] {
  const port = config.tls ? 443 : 8020;
  return config.allowedCidr.map((cidr) => `${port} from ${cidr}`);
}
