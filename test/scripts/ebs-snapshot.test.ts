// ebs-snapshot against a mocked EC2 API (aws-sdk-client-mock): no AWS is reachable from tests. The mock
// answers like EC2 does, including pagination, eventual consistency and error names.
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  EC2ServiceException,
  type Snapshot,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import 'aws-sdk-client-mock-vitest/extend';
import { beforeEach, describe, expect, it } from 'vitest';
import { ebsSnapshot, type EbsSnapshotOptions } from '../../scripts/ebs-snapshot.js';
import {
  CREATED_BY_COMMAND as CREATED_BY,
  CREATED_BY_TAG,
  DATA_VOLUME_TAG,
  REASON_TAG,
  STACK_TAG,
  TIME_TAG,
} from '../../service/src/lib/aws-tags.js';
import { recordingReporter } from './helpers.js';

const ec2 = mockClient(EC2Client);
const client = new EC2Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 'test' },
});
const VOLUME = 'vol-0123456789abcdef0';
const NOW = new Date('2026-03-14T10:00:00.000Z');

const awsError = (name: string, message: string) =>
  new EC2ServiceException({ name, message, $fault: 'client', $metadata: { httpStatusCode: 400 } });
const ours = (id: string, day: number, volume = VOLUME): Snapshot => ({
  SnapshotId: id,
  VolumeId: volume,
  StartTime: new Date(Date.UTC(2026, 2, day)),
  State: 'completed',
  Tags: [{ Key: CREATED_BY_TAG, Value: CREATED_BY }],
});
const options = (overrides: Partial<EbsSnapshotOptions> = {}): EbsSnapshotOptions => ({
  volumeId: VOLUME,
  reason: 'before migrating items to efficientnet_b0',
  wait: false,
  keep: 3,
  now: () => NOW,
  ...overrides,
});

beforeEach(() => {
  ec2.reset();
  ec2
    .on(DescribeVolumesCommand, { VolumeIds: [VOLUME] })
    .resolves({ Volumes: [{ VolumeId: VOLUME, Size: 30, Tags: [{ Key: DATA_VOLUME_TAG, Value: 'ErpImageSearch' }] }] });
  ec2.on(CreateSnapshotCommand).resolves({ SnapshotId: 'snap-new', State: 'pending', VolumeId: VOLUME });
  ec2.on(DescribeSnapshotsCommand).resolves({ Snapshots: [] });
  ec2.on(DeleteSnapshotCommand).resolves({});
});

describe('ebs-snapshot', () => {
  it('snapshots the volume with tags for who, stack, reason and time', async () => {
    const summary = await ebsSnapshot(client, options(), recordingReporter());
    expect(summary).toMatchObject({
      what: 'ebs-snapshot',
      volumeId: VOLUME,
      stack: 'ErpImageSearch',
      snapshotId: 'snap-new',
      state: 'pending',
      deleted: 0,
    });
    expect(ec2).toHaveReceivedCommandWith(CreateSnapshotCommand, {
      VolumeId: VOLUME,
      TagSpecifications: [
        {
          ResourceType: 'snapshot',
          Tags: expect.arrayContaining([
            { Key: CREATED_BY_TAG, Value: 'ebs-snapshot' },
            { Key: STACK_TAG, Value: 'ErpImageSearch' },
            { Key: REASON_TAG, Value: 'before migrating items to efficientnet_b0' },
            { Key: TIME_TAG, Value: '2026-03-14T10:00:00.000Z' },
          ]),
        },
      ],
    });
  });

  it('prunes only its own snapshots of this volume beyond --keep, reading every page', async () => {
    ec2.on(DescribeSnapshotsCommand, { OwnerIds: ['self'] }).callsFake((input: { NextToken?: string }) =>
      input.NextToken === undefined
        ? {
            Snapshots: [
              ours('snap-new', 14),
              ours('snap-d10', 10),
              // Not ours even if a filter let it through: made by DLM, or of another volume.
              { ...ours('snap-dlm', 1), Tags: [{ Key: CREATED_BY_TAG, Value: 'dlm' }] },
              ours('snap-other-volume', 2, 'vol-0fffffffffffffff0'),
            ],
            NextToken: 'page-2',
          }
        : { Snapshots: [ours('snap-d12', 12), ours('snap-d03', 3), ours('snap-d05', 5)] },
    );
    const summary = await ebsSnapshot(client, options({ keep: 3 }), recordingReporter());
    expect(summary).toMatchObject({ kept: 3, deleted: 2, pruned: ['snap-d05', 'snap-d03'] });
    expect(ec2).toHaveReceivedCommandTimes(DescribeSnapshotsCommand, 2);
    expect(ec2.commandCalls(DescribeSnapshotsCommand)[1].args[0].input).toMatchObject({ NextToken: 'page-2' });
    expect(ec2).toHaveReceivedCommandWith(DescribeSnapshotsCommand, {
      OwnerIds: ['self'],
      Filters: [
        { Name: 'volume-id', Values: [VOLUME] },
        { Name: `tag:${CREATED_BY_TAG}`, Values: ['ebs-snapshot'] },
      ],
    });
    expect(ec2).toHaveReceivedCommandTimes(DeleteSnapshotCommand, 2);
    for (const kept of ['snap-new', 'snap-d12', 'snap-d10', 'snap-dlm', 'snap-other-volume']) {
      expect(ec2.commandCalls(DeleteSnapshotCommand, { SnapshotId: kept })).toHaveLength(0);
    }
  });

  it('counts the new snapshot even before DescribeSnapshots lists it (eventual consistency)', async () => {
    ec2
      .on(DescribeSnapshotsCommand, { OwnerIds: ['self'] })
      .resolves({ Snapshots: [ours('snap-a', 10), ours('snap-b', 11)] });
    const summary = await ebsSnapshot(client, options({ keep: 2 }), recordingReporter());
    expect(summary.pruned).toEqual(['snap-a']);
  });

  it(
    'finds the volume by its stack tag (all pages), or by the tag on this instance, and says when that is ' +
      'ambiguous or empty',
    async () => {
      ec2.on(DescribeVolumesCommand, { Filters: [{ Name: `tag:${DATA_VOLUME_TAG}`, Values: ['Prod'] }] }).resolves({
        Volumes: [{ VolumeId: 'vol-0aaaaaaaaaaaaaaa0', Tags: [{ Key: DATA_VOLUME_TAG, Value: 'Prod' }] }],
      });
      expect(
        await ebsSnapshot(client, options({ volumeId: undefined, stack: 'Prod' }), recordingReporter()),
      ).toMatchObject({ volumeId: 'vol-0aaaaaaaaaaaaaaa0', stack: 'Prod' });

      const byInstance = [
        { Name: 'tag-key', Values: [DATA_VOLUME_TAG] },
        { Name: 'attachment.instance-id', Values: ['i-0abc'] },
      ];
      ec2
        .on(DescribeVolumesCommand, { Filters: byInstance })
        .resolvesOnce({ Volumes: [], NextToken: 'more' })
        .resolvesOnce({
          Volumes: [{ VolumeId: 'vol-0bbbbbbbbbbbbbbb0', Tags: [{ Key: DATA_VOLUME_TAG, Value: 'Stage' }] }],
        });
      expect(
        await ebsSnapshot(client, options({ volumeId: undefined, instanceId: 'i-0abc' }), recordingReporter()),
      ).toMatchObject({ volumeId: 'vol-0bbbbbbbbbbbbbbb0', stack: 'Stage' });

      ec2.on(DescribeVolumesCommand, { Filters: [{ Name: 'tag-key', Values: [DATA_VOLUME_TAG] }] }).resolves({
        Volumes: [
          { VolumeId: 'vol-01', Tags: [{ Key: DATA_VOLUME_TAG, Value: 'A' }] },
          { VolumeId: 'vol-02', Tags: [{ Key: DATA_VOLUME_TAG, Value: 'B' }] },
        ],
      });
      await expect(ebsSnapshot(client, options({ volumeId: undefined }), recordingReporter())).rejects.toThrow(
        /2 volumes have tag erp-image-search:data-volume: vol-01 \(A\), vol-02 \(B\); choose one with --volume-id or --stack/,
      );
      ec2
        .on(DescribeVolumesCommand, { Filters: [{ Name: `tag:${DATA_VOLUME_TAG}`, Values: ['Nope'] }] })
        .resolves({ Volumes: [] });
      await expect(
        ebsSnapshot(client, options({ volumeId: undefined, stack: 'Nope' }), recordingReporter()),
      ).rejects.toThrow(/no EBS volume with erp-image-search:data-volume=Nope; pass --volume-id or set DATA_VOLUME_ID/);
      expect(ec2).not.toHaveReceivedCommandWith(CreateSnapshotCommand, { VolumeId: 'vol-01' });
    },
  );

  it('--wait polls until the snapshot is completed', async () => {
    ec2
      .on(DescribeSnapshotsCommand, { SnapshotIds: ['snap-new'] })
      .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-new', State: 'pending' }] })
      .resolvesOnce({ Snapshots: [{ SnapshotId: 'snap-new', State: 'pending' }] })
      .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'completed' }] });
    const summary = await ebsSnapshot(client, options({ wait: true, pollSeconds: 0.01 }), recordingReporter());
    expect(summary.state).toBe('completed');
    expect(ec2.commandCalls(DescribeSnapshotsCommand, { SnapshotIds: ['snap-new'] })).toHaveLength(3);
  });

  it('--wait reports a failed snapshot and one that takes too long', async () => {
    ec2
      .on(DescribeSnapshotsCommand, { SnapshotIds: ['snap-new'] })
      .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'error' }] });
    await expect(ebsSnapshot(client, options({ wait: true, pollSeconds: 0.01 }), recordingReporter())).rejects.toThrow(
      /snap-new failed in AWS \(state "error"\)/,
    );
    ec2
      .on(DescribeSnapshotsCommand, { SnapshotIds: ['snap-new'] })
      .resolves({ Snapshots: [{ SnapshotId: 'snap-new', State: 'pending' }] });
    await expect(
      ebsSnapshot(client, options({ wait: true, pollSeconds: 0.01, waitTimeoutSeconds: 0.2 }), recordingReporter()),
    ).rejects.toThrow(/snap-new did not complete within 0.2 s; it continues in AWS/);
  });

  it('turns AWS errors into messages that say what to do', async () => {
    ec2
      .on(CreateSnapshotCommand)
      .rejects(awsError('UnauthorizedOperation', 'You are not authorized to perform this operation.'));
    await expect(ebsSnapshot(client, options(), recordingReporter())).rejects.toThrow(
      `not allowed to create a snapshot of ${VOLUME} (UnauthorizedOperation): the instance role or your ` +
        `credentials need ec2:CreateSnapshot and ec2:CreateTags`,
    );
    ec2
      .on(CreateSnapshotCommand)
      .rejects(
        awsError(
          'SnapshotCreationPerVolumeRateExceeded',
          'The maximum per volume CreateSnapshot request rate has been exceeded.',
        ),
      );
    await expect(ebsSnapshot(client, options(), recordingReporter())).rejects.toThrow(
      /AWS throttled the request to create a snapshot .*wait a few minutes/,
    );
    ec2
      .on(DescribeVolumesCommand, { VolumeIds: [VOLUME] })
      .rejects(awsError('InvalidVolume.NotFound', `The volume '${VOLUME}' does not exist.`));
    await expect(ebsSnapshot(client, options(), recordingReporter())).rejects.toThrow(
      new RegExp(
        `cannot describe volume ${VOLUME}: The volume '${VOLUME}' does not exist. ` +
          `\\(InvalidVolume.NotFound\\); check --volume-id / DATA_VOLUME_ID and AWS_REGION`,
      ),
    );
    ec2
      .on(DescribeVolumesCommand, { VolumeIds: [VOLUME] })
      .rejects(
        Object.assign(new Error('Could not load credentials from any providers'), { name: 'CredentialsProviderError' }),
      );
    await expect(ebsSnapshot(client, options(), recordingReporter())).rejects.toThrow(
      /no AWS credentials .* instance role provides them/,
    );
  });

  it('keeps (and reports) an old snapshot it may not delete, and still succeeds', async () => {
    ec2
      .on(DescribeSnapshotsCommand, { OwnerIds: ['self'] })
      .resolves({ Snapshots: [ours('snap-new', 14), ours('snap-in-use', 1)] });
    ec2
      .on(DeleteSnapshotCommand, { SnapshotId: 'snap-in-use' })
      .rejects(awsError('InvalidSnapshot.InUse', 'The snapshot snap-in-use is currently in use by ami-0123.'));
    const reporter = recordingReporter();
    const summary = await ebsSnapshot(client, options({ keep: 1 }), reporter);
    expect(summary).toMatchObject({ deleted: 0, kept: 2 });
    expect(reporter.warnings).toEqual([
      expect.stringMatching(
        /kept snap-in-use: cannot delete snap-in-use: InvalidSnapshot.InUse: The snapshot snap-in-use is currently in use by ami-0123/,
      ),
    ]);
  });
});
