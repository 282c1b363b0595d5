// `ops ebs-snapshot`: an EBS snapshot of the data volume, for moments that deserve one beyond the daily
// Data Lifecycle Manager snapshots (before a migration, before an upgrade). The volume is found by id
// (--volume-id or DATA_VOLUME_ID) or by the tag the CDK stack puts on it. The snapshot is tagged as
// ours, and pruning only ever considers snapshots of that volume carrying our created-by tag, so the
// DLM snapshots and anyone else's are never touched.
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeVolumesCommand,
  paginateDescribeSnapshots,
  paginateDescribeVolumes,
  waitUntilSnapshotCompleted,
  type EC2Client,
  type Snapshot,
  type Tag,
  type Volume,
} from '@aws-sdk/client-ec2';
import {
  CREATED_BY_COMMAND,
  CREATED_BY_TAG,
  DATA_VOLUME_TAG,
  REASON_TAG,
  STACK_TAG,
  TIME_TAG,
} from '../service/src/lib/aws-tags.js';
import { OpsError, type Reporter } from './cli.js';

export interface EbsSnapshotOptions {
  volumeId?: string;
  /** Stack name: selects the volume whose data-volume tag has this value. */
  stack?: string;
  /** Narrows a tag search to the volume attached to this instance. */
  instanceId?: string;
  reason: string;
  wait: boolean;
  /** How long --wait waits at most (default 1 h). */
  waitTimeoutSeconds?: number;
  /** First delay between completion checks (default 15 s; the SDK backs off from there). */
  pollSeconds?: number;
  /** Our snapshots of this volume kept, the new one included. */
  keep: number;
  now?: () => Date;
}

export interface EbsSnapshotSummary {
  what: 'ebs-snapshot';
  volumeId: string;
  stack: string;
  snapshotId: string;
  state: string;
  kept: number;
  deleted: number;
  pruned: string[];
  duration: number;
}

const THROTTLED = new Set([
  'RequestLimitExceeded',
  'Throttling',
  'ThrottlingException',
  'SnapshotCreationPerVolumeRateExceeded',
  'TooManyRequestsException',
]);
const DENIED = new Set([
  'UnauthorizedOperation',
  'AccessDenied',
  'AccessDeniedException',
  'AuthFailure',
  'OptInRequired',
]);
const NOT_FOUND = new Set(['InvalidVolume.NotFound', 'InvalidVolumeID.Malformed', 'InvalidSnapshot.NotFound']);

/** An AWS failure as one sentence that says what to do. */
export function awsError(error: unknown, action: string, permission: string): OpsError {
  const name = (error as { name?: string }).name ?? 'Error';
  const message = (error as Error).message ?? String(error);
  if (DENIED.has(name))
    return new OpsError(`not allowed to ${action} (${name}): the instance role or your credentials need ${permission}`);
  if (THROTTLED.has(name))
    return new OpsError(`AWS throttled the request to ${action} (${name}); wait a few minutes and run again`);
  if (NOT_FOUND.has(name))
    return new OpsError(`cannot ${action}: ${message} (${name}); check --volume-id / DATA_VOLUME_ID and AWS_REGION`);
  if (name === 'CredentialsProviderError' || /credential/i.test(message)) {
    return new OpsError(
      `no AWS credentials to ${action} (${message}); on EC2 the instance role provides them, elsewhere set ` +
        `AWS_PROFILE or AWS_ACCESS_KEY_ID`,
    );
  }
  if (/region is missing/i.test(message)) return new OpsError(`cannot ${action}: no AWS region; set AWS_REGION`);
  return new OpsError(`cannot ${action}: ${name}: ${message}`);
}

async function aws<T>(action: string, permission: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw awsError(error, action, permission);
  }
}

const tagValue = (tags: Tag[] | undefined, key: string) => tags?.find((tag) => tag.Key === key)?.Value;

/** EC2 tag values allow letters, digits, spaces and + - = . _ : / @ (up to 256 characters). */
const safeTagValue = (text: string) => text.replace(/[^\p{L}\p{N} +\-=._:/@]/gu, '-').slice(0, 256);

async function findVolume(ec2: EC2Client, options: EbsSnapshotOptions): Promise<Volume> {
  if (options.volumeId) {
    const { Volumes } = await aws(`describe volume ${options.volumeId}`, 'ec2:DescribeVolumes', () =>
      ec2.send(new DescribeVolumesCommand({ VolumeIds: [options.volumeId!] })),
    );
    const volume = Volumes?.[0];
    if (!volume)
      throw new OpsError(`volume ${options.volumeId} was not found; check --volume-id / DATA_VOLUME_ID and AWS_REGION`);
    return volume;
  }
  const filters = [
    options.stack
      ? { Name: `tag:${DATA_VOLUME_TAG}`, Values: [options.stack] }
      : { Name: 'tag-key', Values: [DATA_VOLUME_TAG] },
    ...(options.instanceId ? [{ Name: 'attachment.instance-id', Values: [options.instanceId] }] : []),
  ];
  const volumes: Volume[] = [];
  await aws('look up the data volume by its tag', 'ec2:DescribeVolumes', async () => {
    for await (const page of paginateDescribeVolumes({ client: ec2 }, { Filters: filters }))
      volumes.push(...(page.Volumes ?? []));
  });
  const tag = options.stack ? `${DATA_VOLUME_TAG}=${options.stack}` : `tag ${DATA_VOLUME_TAG}`;
  const where = `${tag}${options.instanceId ? ` attached to ${options.instanceId}` : ''}`;
  if (volumes.length === 0) throw new OpsError(`no EBS volume with ${where}; pass --volume-id or set DATA_VOLUME_ID`);
  if (volumes.length > 1) {
    const list = volumes.map((v) => `${v.VolumeId} (${tagValue(v.Tags, DATA_VOLUME_TAG)})`).join(', ');
    throw new OpsError(`${volumes.length} volumes have ${where}: ${list}; choose one with --volume-id or --stack`);
  }
  return volumes[0];
}

export async function ebsSnapshot(
  ec2: EC2Client,
  options: EbsSnapshotOptions,
  reporter: Reporter,
): Promise<EbsSnapshotSummary> {
  const clock = performance.now();
  const now = (options.now ?? (() => new Date()))();
  const volume = await findVolume(ec2, options);
  const volumeId = volume.VolumeId!;
  const stack = tagValue(volume.Tags, DATA_VOLUME_TAG) ?? options.stack ?? 'none';
  const time = now.toISOString();
  reporter.info(`snapshot of ${volumeId} (${volume.Size ?? '?'} GiB, stack ${stack}): ${options.reason}`);
  const created = await aws(`create a snapshot of ${volumeId}`, 'ec2:CreateSnapshot and ec2:CreateTags', () =>
    ec2.send(
      new CreateSnapshotCommand({
        VolumeId: volumeId,
        Description: safeTagValue(`erp-image-search ${stack}: ${options.reason}`).slice(0, 255),
        TagSpecifications: [
          {
            ResourceType: 'snapshot',
            Tags: [
              { Key: 'Name', Value: safeTagValue(`${stack} data ${time}`) },
              { Key: CREATED_BY_TAG, Value: CREATED_BY_COMMAND },
              { Key: STACK_TAG, Value: safeTagValue(stack) },
              { Key: REASON_TAG, Value: safeTagValue(options.reason) },
              { Key: TIME_TAG, Value: time },
            ],
          },
        ],
      }),
    ),
  );
  const snapshotId = created.SnapshotId;
  if (!snapshotId) throw new OpsError(`AWS accepted the snapshot of ${volumeId} but returned no snapshot id`);
  reporter.info(`created ${snapshotId} (${created.State ?? 'pending'})`);

  let state = created.State ?? 'pending';
  if (options.wait && state !== 'completed') {
    const maxWaitTime = options.waitTimeoutSeconds ?? 3600;
    const minDelay = options.pollSeconds ?? 15;
    reporter.info(`waiting for ${snapshotId} to complete (at most ${maxWaitTime} s)`);
    try {
      await waitUntilSnapshotCompleted(
        { client: ec2, maxWaitTime, minDelay, maxDelay: Math.max(minDelay, 120) },
        { SnapshotIds: [snapshotId] },
      );
    } catch (error) {
      // The SDK's waiter throws TimeoutError, or a plain Error whose message is its JSON result.
      const name = (error as Error).name;
      const waiterState = /"state":"([A-Z]+)"/.exec((error as Error).message ?? '')?.[1];
      if (name === 'TimeoutError')
        throw new OpsError(
          `${snapshotId} did not complete within ${maxWaitTime} s; it continues in AWS, check it with: aws ec2 ` +
            `describe-snapshots --snapshot-ids ${snapshotId}`,
        );
      if (waiterState === 'FAILURE')
        throw new OpsError(`${snapshotId} failed in AWS (state "error"); see the EC2 console and take a new one`);
      throw awsError(error, `check ${snapshotId}`, 'ec2:DescribeSnapshots');
    }
    state = 'completed';
    reporter.info(`${snapshotId} completed`);
  }

  const pruned = await prune(ec2, volumeId, snapshotId, now, options.keep, reporter);
  return {
    what: 'ebs-snapshot',
    volumeId,
    stack,
    snapshotId,
    state,
    kept: pruned.kept,
    deleted: pruned.deleted.length,
    pruned: pruned.deleted,
    duration: Number(((performance.now() - clock) / 1000).toFixed(3)),
  };
}

/** Deletes our snapshots of the volume beyond the newest `keep`; a snapshot that cannot be deleted is
 * reported and kept. */
async function prune(ec2: EC2Client, volumeId: string, newest: string, now: Date, keep: number, reporter: Reporter) {
  const ours: Snapshot[] = [];
  await aws(`list the snapshots of ${volumeId}`, 'ec2:DescribeSnapshots', async () => {
    const input = {
      OwnerIds: ['self'],
      Filters: [
        { Name: 'volume-id', Values: [volumeId] },
        { Name: `tag:${CREATED_BY_TAG}`, Values: [CREATED_BY_COMMAND] },
      ],
    };
    for await (const page of paginateDescribeSnapshots({ client: ec2, pageSize: 200 }, input)) {
      // Checked again here: deleting the wrong snapshot must not depend on a filter alone.
      ours.push(
        ...(page.Snapshots ?? []).filter(
          (s) => s.VolumeId === volumeId && tagValue(s.Tags, CREATED_BY_TAG) === CREATED_BY_COMMAND,
        ),
      );
    }
  });
  // DescribeSnapshots is eventually consistent: a snapshot created a moment ago may not be listed yet.
  if (!ours.some((s) => s.SnapshotId === newest)) ours.push({ SnapshotId: newest, StartTime: now, VolumeId: volumeId });
  ours.sort((a, b) => (b.StartTime?.getTime() ?? 0) - (a.StartTime?.getTime() ?? 0));
  const deleted: string[] = [];
  for (const snapshot of ours.slice(keep)) {
    if (snapshot.SnapshotId === newest) continue;
    try {
      await ec2.send(new DeleteSnapshotCommand({ SnapshotId: snapshot.SnapshotId }));
      deleted.push(snapshot.SnapshotId!);
      reporter.info(
        `deleted old snapshot ${snapshot.SnapshotId} (${snapshot.StartTime?.toISOString() ?? 'unknown time'}; ` +
          `keeping the newest ${keep})`,
      );
    } catch (error) {
      if ((error as Error).name === 'InvalidSnapshot.NotFound') continue;
      reporter.warn(
        `kept ${snapshot.SnapshotId}: ` +
          `${awsError(error, `delete ${snapshot.SnapshotId}`, 'ec2:DeleteSnapshot').message}`,
      );
    }
  }
  return { kept: ours.length - deleted.length, deleted };
}
