// The instance's user data: a MIME archive with
//   1. a cloud-config part that makes cloud-init run the user-data script on every boot, not only the first
//      (so a changed app or setting takes effect after CloudFormation's stop/start, and the data volume is
//      checked and mounted on each boot);
//   2. a script part that writes infra/user-data/bootstrap.sh byte for byte and the deployment's values
//      (deployment.env, one NAME=value a line), then runs bootstrap.sh with the region and the app's S3 URL.
//      All logic lives in the scripts.
// Nothing secret goes in here: deployment.env names secrets by ARN and the scripts fetch their values with the
// instance role.
//
// deployment.env lines (read by infra/user-data/deployment-env.sh, never sourced by a shell):
//   VOLUME_ID, BACKUP_SCHEDULE     values for the boot scripts
//   SECRET_<NAME>=<arn>            the .env gets NAME=<secret value>; the secret must hold a plain token
//   OPERATOR_SECRET_<NAME>=<arn>   the same for a secret the operator fills in; empty (no value yet) → NAME=
//   SETTING_<NAME>=<value>         the .env gets NAME='<value>' (a setting of the service)
import { readFileSync } from 'node:fs';
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

export const BOOTSTRAP_PATH = '/opt/erp-image-search/bootstrap.sh';
export const DEPLOYMENT_ENV_PATH = '/opt/erp-image-search/deployment.env';
export const HEREDOC_END = 'ERP_IMAGE_SEARCH_BOOTSTRAP_END';
export const CLOUD_CONFIG = { cloud_final_modules: [['scripts-user', 'always']] };

export const bootstrapScript = () => readFileSync(new URL('../user-data/bootstrap.sh', import.meta.url), 'utf8');

export interface BootArguments {
  region: string;
  assetUrl: string;
  volumeId: string;
  backupSchedule: string;
  /** Environment name → ARN of a generated secret (must hold a plain token). */
  secrets: Record<string, string>;
  /** Environment name → ARN of a secret the operator puts later (may have no value yet). */
  operatorSecrets: Record<string, string>;
  /** Environment name → value of a plain service setting. */
  settings: Record<string, string>;
}

const NAME = /^[A-Z][A-Z0-9_]*$/;

/** Values are ids, ARNs, URLs, JSON and calendar expressions: never quotes, line breaks or a final backslash. */
function plain(value: string, what: string): string {
  if (!Token.isUnresolved(value) && /['\n\r\0]|\\$/.test(value)) {
    throw new Error(`${what} must not contain quotes, line breaks or a final backslash (got ${JSON.stringify(value)})`);
  }
  return value;
}

/** Single-quotes one argument of the bootstrap command line. */
export const shellQuote = (value: string) => `'${plain(value, 'a user data argument')}'`;

function line(name: string, value: string): string {
  if (!NAME.test(name)) throw new Error(`deployment.env name ${JSON.stringify(name)} is not an environment name`);
  return `${name}=${plain(value, `the deployment.env value of ${name}`)}`;
}

export function deploymentEnv(args: BootArguments): string[] {
  const prefixed = (prefix: string, entries: Record<string, string>) =>
    Object.entries(entries).map(([name, value]) => line(`${prefix}${name}`, value));
  return [
    line('VOLUME_ID', args.volumeId),
    line('BACKUP_SCHEDULE', args.backupSchedule),
    ...prefixed('SECRET_', args.secrets),
    ...prefixed('OPERATOR_SECRET_', args.operatorSecrets),
    ...prefixed('SETTING_', args.settings),
  ];
}

export function bootUserData(args: BootArguments, script = bootstrapScript()): ec2.UserData {
  if (script.split('\n').includes(HEREDOC_END)) throw new Error(`bootstrap.sh must not contain a line ${HEREDOC_END}`);
  const shell = ec2.UserData.forLinux();
  // Written to a temporary name and renamed, so a boot cut short never leaves half a file for the next one.
  const writeFile = (target: string, mode: string, lines: string[]) => [
    `cat > ${target}.tmp <<'${HEREDOC_END}'`,
    ...lines,
    HEREDOC_END,
    `chmod ${mode} ${target}.tmp && sync ${target}.tmp && mv -f ${target}.tmp ${target}`,
  ];
  shell.addCommands(
    'set -euo pipefail',
    `install -d -m 0755 ${BOOTSTRAP_PATH.slice(0, BOOTSTRAP_PATH.lastIndexOf('/'))}`,
    ...writeFile(BOOTSTRAP_PATH, '0755', [script.replace(/\n$/, '')]),
    ...writeFile(DEPLOYMENT_ENV_PATH, '0600', deploymentEnv(args)),
    `exec bash ${BOOTSTRAP_PATH} ${[args.region, args.assetUrl, DEPLOYMENT_ENV_PATH].map(shellQuote).join(' ')}`,
  );
  const multipart = new ec2.MultipartUserData();
  multipart.addPart(
    ec2.MultipartBody.fromRawBody({
      contentType: 'text/cloud-config; charset="utf-8"',
      body: `#cloud-config\n${JSON.stringify(CLOUD_CONFIG)}`, // JSON is YAML
    }),
  );
  multipart.addUserDataPart(shell, ec2.MultipartBody.SHELL_SCRIPT, true);
  return multipart;
}
