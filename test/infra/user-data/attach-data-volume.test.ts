// attach-data-volume.sh against stand-ins: instance metadata (IMDSv2) served on loopback, a strict fake AWS
// CLI that plays the volume's states, and a temporary /dev/disk/by-id.
import { spawn } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { SCRIPTS, type Run } from './run-script.js';

const VOLUME = 'vol-0123456789abcdef0';
const TOKEN = 'token-123';

describe('attach-data-volume.sh', () => {
  let imds: Server;
  let imdsUrl: string;
  let dir: string;
  beforeAll(async () => {
    imds = createServer((req, res) => {
      if (
        req.method === 'PUT' &&
        req.url === '/latest/api/token' &&
        req.headers['x-aws-ec2-metadata-token-ttl-seconds']
      ) {
        res.end(TOKEN);
      } else if (
        req.method === 'GET' &&
        req.url === '/latest/meta-data/instance-id' &&
        req.headers['x-aws-ec2-metadata-token'] === TOKEN
      ) {
        res.end('i-new');
      } else {
        res.statusCode = 401; // IMDSv1-style requests are refused, as on an instance with HttpTokens=required
        res.end();
      }
    });
    await new Promise<void>((resolve) => imds.listen(0, '127.0.0.1', resolve));
    imdsUrl = `http://127.0.0.1:${(imds.address() as AddressInfo).port}`;
  });
  afterAll(() => new Promise<void>((resolve) => imds.close(() => resolve())));
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'attach-'));
    mkdirSync(path.join(dir, 'by-id'));
    writeFileSync(path.join(dir, 'nvme1n1'), '');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** The fake CLI answers describe-volumes with the next line of `states` (the last one repeats). */
  const fakeAws = (states: string[]) => {
    writeFileSync(path.join(dir, 'states'), states.join('\n') + '\n');
    /* eslint-disable max-len -- the fake CLI matches the script's exact command line */
    writeFileSync(
      path.join(dir, 'aws'),
      `#!/bin/bash
echo "$*" >> '${dir}/calls'
case "$*" in
  "ec2 describe-volumes --region eu-central-1 --volume-ids ${VOLUME} --query Volumes[0].[State, Attachments[0].InstanceId] --output text")
    n=$(grep -c describe-volumes '${dir}/calls'); total=$(wc -l < '${dir}/states')
    sed -n "$(( n < total ? n : total ))p" '${dir}/states' ;;
  "ec2 attach-volume --region eu-central-1 --volume-id ${VOLUME} --instance-id i-new --device /dev/sdf")
    ln -s '${dir}/nvme1n1' '${dir}/by-id/nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0' ;;
  *) echo "unexpected aws call: $*" >&2; exit 254 ;;
esac
`,
      { mode: 0o755 },
    );
    /* eslint-enable max-len */
  };
  const attach = (timeout = '20') =>
    new Promise<Run>((resolve) => {
      const child = spawn('bash', [path.join(SCRIPTS, 'attach-data-volume.sh'), VOLUME, 'eu-central-1', timeout], {
        env: {
          ...process.env,
          PATH: `${dir}:${process.env.PATH}`,
          IMDS_ENDPOINT: imdsUrl,
          BY_ID_DIR: path.join(dir, 'by-id'),
          POLL_SECONDS: '0.1',
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (chunk) => (stdout += chunk));
      child.stderr.on('data', (chunk) => (stderr += chunk));
      child.on('close', (status) => resolve({ status, stdout, stderr }));
    });
  const calls = () =>
    existsSync(path.join(dir, 'calls')) ? readFileSync(path.join(dir, 'calls'), 'utf8').trim().split('\n') : [];

  it('waits while the previous instance holds the volume, then attaches it and prints the device', async () => {
    fakeAws(['in-use\ti-old', 'in-use\ti-old', 'available\tNone', 'in-use\ti-new']);
    const run = await attach();
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(path.join(dir, 'nvme1n1'));
    expect(run.stderr).toContain('held by i-old; waiting for it to be released');
    expect(calls().map((call) => call.split(' ')[1])).toEqual([
      'describe-volumes',
      'describe-volumes',
      'describe-volumes',
      'attach-volume',
    ]);
  });

  it('does nothing when the volume is already attached here (a reboot)', async () => {
    fakeAws(['in-use\ti-new']);
    symlinkSync(
      path.join(dir, 'nvme1n1'),
      path.join(dir, 'by-id', 'nvme-Amazon_Elastic_Block_Store_vol0123456789abcdef0'),
    );
    const run = await attach();
    expect(run.status, run.stderr).toBe(0);
    expect(run.stdout.trim()).toBe(path.join(dir, 'nvme1n1'));
    expect(calls()).toEqual([]);
  });

  it('gives up with a pointer to the runbook when the volume is never released', async () => {
    fakeAws(['in-use\ti-old']);
    const run = await attach('1');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('did not become usable within 1s');
    expect(calls().some((call) => call.includes('attach-volume'))).toBe(false);
  });

  it('refuses a malformed volume id', async () => {
    const child = spawn('bash', [path.join(SCRIPTS, 'attach-data-volume.sh'), 'vol-xyz', 'eu-central-1'], {
      env: { ...process.env, IMDS_ENDPOINT: imdsUrl },
    });
    const status = await new Promise((resolve) => child.on('close', resolve));
    expect(status).toBe(1);
  });
});
