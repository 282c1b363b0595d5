// The instance's user data: a MIME archive with
//   1. a cloud-config part that makes cloud-init run the user-data script on every boot, not only the first
//      (so a changed app or setting takes effect after CloudFormation's stop/start, and the data volume is
//      checked and mounted on each boot);
//   2. a script part that writes infra/user-data/bootstrap.sh to disk byte for byte and runs it with the
//      deployment's values as arguments. All logic lives in that file and the scripts it runs.
// Nothing secret goes in here: the scripts receive secret ARNs and fetch the values with the instance role.
import { readFileSync } from 'node:fs';
import { Token } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';

export const BOOTSTRAP_PATH = '/opt/erp-image-search/bootstrap.sh';
export const HEREDOC_END = 'ERP_IMAGE_SEARCH_BOOTSTRAP_END';
export const CLOUD_CONFIG = { cloud_final_modules: [['scripts-user', 'always']] };

export const bootstrapScript = () => readFileSync(new URL('../user-data/bootstrap.sh', import.meta.url), 'utf8');

/** Single-quotes one argument; values are ids, ARNs, URLs and calendar expressions, never quotes. */
export function shellQuote(value: string): string {
  if (!Token.isUnresolved(value) && /['\n\r\0]/.test(value)) {
    throw new Error(`user data argument ${JSON.stringify(value)} must not contain quotes or line breaks`);
  }
  return `'${value}'`;
}

export interface BootArguments {
  region: string;
  assetUrl: string;
  volumeId: string;
  apiKeySecretArn: string;
  qdrantKeySecretArn: string;
  backupSchedule: string;
}

export function bootUserData(args: BootArguments, script = bootstrapScript()): ec2.UserData {
  if (script.split('\n').includes(HEREDOC_END)) throw new Error(`bootstrap.sh must not contain a line ${HEREDOC_END}`);
  const shell = ec2.UserData.forLinux();
  const argv = [
    args.region,
    args.assetUrl,
    args.volumeId,
    args.apiKeySecretArn,
    args.qdrantKeySecretArn,
    args.backupSchedule,
  ];
  shell.addCommands(
    'set -euo pipefail',
    `install -d -m 0755 ${BOOTSTRAP_PATH.slice(0, BOOTSTRAP_PATH.lastIndexOf('/'))}`,
    `cat > ${BOOTSTRAP_PATH} <<'${HEREDOC_END}'`,
    script.replace(/\n$/, ''),
    HEREDOC_END,
    `exec bash ${BOOTSTRAP_PATH} ${argv.map(shellQuote).join(' ')}`,
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
