// Deployment configuration: CDK context (cdk.json defaults, `-c key=value` overrides) → one typed, validated
// object. Every key is declared once in FIELDS (parser, default, description); all problems are reported
// together. Values from `-c` arrive as strings, values from cdk.json as JSON types: parsers accept both.
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

const boolean: Parser<boolean> = (raw, key) => {
  if (raw === true || raw === 'true') return true;
  if (raw === false || raw === 'false') return false;
  return fail(key, `must be true or false (got ${JSON.stringify(raw)}).`);
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

const cidrList: Parser<string[]> = (raw, key) => {
  const parts = Array.isArray(raw) ? raw.map(String) : String(raw).split(',');
  const cidrs = parts
    .map((part) => part.trim())
    .filter((part) => part.length > 0)
    .map((part) => canonicalCidr(part, key));
  return [...new Set(cidrs)];
};

const cidr: Parser<string> = (raw, key) => {
  const value = canonicalCidr(String(raw), key);
  return isAnyAddress(value)
    ? fail(key, `${value} would open the port to the whole internet; give your own address range.`)
    : value;
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

export const FIELDS = {
  stackName: {
    parse: text(/^[A-Za-z][A-Za-z0-9-]{0,127}$/, 'a stack name (letters, digits, hyphens)'),
    default: 'ErpImageSearch',
    doc: 'CloudFormation stack name; also the value of the data volume tag.',
  },
  availabilityZone: {
    parse: text(/^[a-z]{2}(-gov)?-[a-z]+-\d[a-z]$/, 'an availability zone such as eu-central-1a'),
    default: 'eu-central-1a',
    doc:
      'The one AZ of the instance and its data volume (a volume attaches only within its AZ). The region ' +
      'follows from it.',
  },
  allowedCidr: {
    parse: cidrList,
    default: [] as string[],
    doc:
      'CIDR(s), comma-separated, allowed to reach the API on 8020 (your ERPNext server). Empty: the port ' +
      'stays closed.',
  },
  allowAnyCidr: { parse: boolean, default: false, doc: 'Must be true to accept 0.0.0.0/0 or ::/0 in allowedCidr.' },
  sshCidr: { parse: cidr, doc: 'Opens port 22 to this CIDR. Default: no SSH at all (use SSM Session Manager).' },
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
} satisfies Record<string, Field<unknown>>;

type Fields = typeof FIELDS;
type ValueOf<K extends keyof Fields> = ReturnType<Fields[K]['parse']>;
type Defaulted = { [K in keyof Fields]: Fields[K] extends { default: unknown } ? K : never }[keyof Fields];

export type ContextValues = { [K in Defaulted]: ValueOf<K> } & { [K in Exclude<keyof Fields, Defaulted>]?: ValueOf<K> };

export type DeployConfig = ContextValues & {
  /** Region of availabilityZone. */
  region: string;
  architecture: 'arm64' | 'amd64';
  /** Public SSM parameter holding the current Ubuntu AMI for this release and architecture. */
  amiParameterName: string;
  /** Problems that do not stop synthesis (shown as warnings on the stack). */
  warnings: string[];
};

/** Reads and checks every key; `lookup` is `(key) => app.node.tryGetContext(key)`. */
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
  if (!problems.length && context.allowedCidr.some(isAnyAddress) && !context.allowAnyCidr) {
    problems.push(
      "allowedCidr: 0.0.0.0/0 or ::/0 opens the API to the whole internet; give ERPNext's address range, or " +
        'add -c allowAnyCidr=true if you really mean it.',
    );
  }
  if (problems.length) {
    throw new ConfigError(
      `Invalid deployment configuration (cdk.json "context" or -c key=value):\n- ${problems.join('\n- ')}`,
    );
  }

  const architecture = UBUNTU_ARCH[new ec2.InstanceType(context.instanceType).architecture];
  const warnings = context.allowedCidr.length
    ? []
    : [
        'allowedCidr is not set: port 8020 stays closed. Deploy with -c allowedCidr=<ERPNext address>/32 to ' +
          'let ERPNext in.',
      ];
  return {
    ...context,
    region: context.availabilityZone.slice(0, -1),
    architecture,
    amiParameterName:
      `/aws/service/canonical/ubuntu/server/${context.ubuntuRelease}/stable/current/${architecture}` +
      `/hvm/${UBUNTU_RELEASES[context.ubuntuRelease]}/ami-id`,
    warnings,
  };
}
