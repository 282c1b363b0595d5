// The AWS tags the stack and `ops ebs-snapshot` share (service/src/lib/aws-tags.ts), checked the way AWS
// would check them: the synthesized stack's IAM statements are evaluated against the requests the real
// command sends (through aws-sdk-client-mock) for the volume the stack tags. If either side used another
// tag key or value, a request would be denied here, as it would be on the instance.
import {
  CreateSnapshotCommand,
  DeleteSnapshotCommand,
  DescribeSnapshotsCommand,
  DescribeVolumesCommand,
  EC2Client,
  type Tag,
} from '@aws-sdk/client-ec2';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ebsSnapshot } from '../../scripts/ebs-snapshot.js';
import { CREATED_BY_DLM, CREATED_BY_TAG, DATA_VOLUME_TAG } from '../../service/src/lib/aws-tags.js';
import { recordingReporter } from '../scripts/helpers.js';
import { cfnText, resourcesOfType, synth, type Synthesized } from './synth.js';

type Statement = { Effect: string; Action: string | string[]; Resource: unknown; Condition?: Conditions };
type Conditions = Record<string, Record<string, string>>;
type Tags = Record<string, string>;

/** What IAM sees of one authorisation: the action, the resource's kind and tags, the request's tags. */
interface Request {
  action: string;
  resource: 'volume' | 'snapshot';
  resourceTags?: Tags;
  requestTags?: Tags;
  createAction?: string;
}

/** Allow statements only (the role has no Deny); a condition key this evaluator does not know fails closed. */
function allowed(statements: Statement[], request: Request): boolean {
  return statements.some((statement) => {
    if (statement.Effect !== 'Allow' || ![statement.Action].flat().includes(request.action)) return false;
    const resources = [statement.Resource].flat().map(cfnText);
    if (!resources.some((arn) => arn === '*' || arn.includes(`:${request.resource}/`))) return false;
    return Object.entries(statement.Condition ?? {}).every(([operator, pairs]) => {
      if (operator !== 'StringEquals') return false;
      return Object.entries(pairs).every(([key, value]) => {
        if (key.startsWith('aws:ResourceTag/')) return request.resourceTags?.[key.slice(16)] === value;
        if (key.startsWith('aws:RequestTag/')) return request.requestTags?.[key.slice(15)] === value;
        if (key === 'ec2:CreateAction') return request.createAction === value;
        return false;
      });
    });
  });
}

const tagsOf = (tags: Array<{ Key?: string; Value?: string }> | undefined): Tags =>
  Object.fromEntries((tags ?? []).map((tag) => [tag.Key!, tag.Value!]));

describe('the AWS tags of the stack and of ops ebs-snapshot', () => {
  let s: Synthesized;
  let role: Statement[];
  let volumeTags: Tags;
  const ec2 = mockClient(EC2Client);
  const client = new EC2Client({
    region: 'eu-central-1',
    credentials: { accessKeyId: 'AKIDTEST', secretAccessKey: 't' },
  });

  beforeAll(() => {
    s = synth({ allowedCidr: '203.0.113.10/32' });
    role = resourcesOfType(s, 'AWS::IAM::Policy')
      .filter(([id]) => id.startsWith('ServerRole'))
      .flatMap(([, r]) => (r.Properties!.PolicyDocument as { Statement: Statement[] }).Statement);
    const volumes = resourcesOfType(s, 'AWS::EC2::Volume');
    expect(volumes).toHaveLength(1);
    volumeTags = tagsOf(volumes[0][1].Properties!.Tags as Tag[]);
  });
  afterAll(() => s?.cleanup());

  it('the stack tags the data volume with the key the command and DLM select it by', () => {
    expect(volumeTags[DATA_VOLUME_TAG]).toBe(s.stack.stackName);
    const [, dlm] = resourcesOfType(s, 'AWS::DLM::LifecyclePolicy')[0];
    const details = dlm.Properties!.PolicyDetails as {
      TargetTags: Tag[];
      Schedules: Array<{ TagsToAdd: Tag[] }>;
    };
    expect(tagsOf(details.TargetTags)).toEqual({ [DATA_VOLUME_TAG]: s.stack.stackName });
    // DLM's snapshots carry another created-by value, so the command never prunes them and cannot delete them.
    expect(tagsOf(details.Schedules[0].TagsToAdd)).toEqual({ [CREATED_BY_TAG]: CREATED_BY_DLM });
    expect(
      allowed(role, {
        action: 'ec2:DeleteSnapshot',
        resource: 'snapshot',
        resourceTags: { [CREATED_BY_TAG]: CREATED_BY_DLM },
      }),
    ).toBe(false);
  });

  it('every request the command makes for that volume is allowed by the instance role, and no other', async () => {
    ec2.reset();
    let sentTags: Tags = {};
    ec2.on(DescribeVolumesCommand).resolves({ Volumes: [{ VolumeId: 'vol-1', Size: 30, Tags: volumes() }] });
    ec2.on(CreateSnapshotCommand).callsFake((input: { TagSpecifications: Array<{ Tags: Tag[] }> }) => {
      sentTags = tagsOf(input.TagSpecifications[0].Tags);
      return { SnapshotId: 'snap-new', State: 'pending', VolumeId: 'vol-1' };
    });
    // An older snapshot the command made before, tagged as it tags them.
    ec2.on(DescribeSnapshotsCommand).callsFake(() => ({
      Snapshots: [
        { SnapshotId: 'snap-new', VolumeId: 'vol-1', StartTime: new Date('2026-03-14'), Tags: tagList(sentTags) },
        { SnapshotId: 'snap-old', VolumeId: 'vol-1', StartTime: new Date('2026-03-01'), Tags: tagList(sentTags) },
      ],
    }));
    ec2.on(DeleteSnapshotCommand).resolves({});

    const summary = await ebsSnapshot(
      client,
      { stack: s.stack.stackName, reason: 'test', wait: false, keep: 1 },
      recordingReporter(),
    );
    expect(summary).toMatchObject({ volumeId: 'vol-1', snapshotId: 'snap-new', pruned: ['snap-old'] });

    // The volume was looked up by the tag the stack put on it.
    const filters = ec2.commandCalls(DescribeVolumesCommand)[0].args[0].input.Filters;
    expect(filters).toContainEqual({ Name: `tag:${DATA_VOLUME_TAG}`, Values: [s.stack.stackName] });
    // CreateSnapshot is authorised on the volume (its tags) and on the new snapshot (the request's tags);
    // each tag is authorised as CreateTags at creation.
    expect(allowed(role, { action: 'ec2:CreateSnapshot', resource: 'volume', resourceTags: volumeTags })).toBe(true);
    expect(allowed(role, { action: 'ec2:CreateSnapshot', resource: 'snapshot', requestTags: sentTags })).toBe(true);
    expect(
      allowed(role, {
        action: 'ec2:CreateTags',
        resource: 'snapshot',
        requestTags: sentTags,
        createAction: 'CreateSnapshot',
      }),
    ).toBe(true);
    // Pruning deletes a snapshot carrying the tags the command gave it.
    const deleted = ec2.commandCalls(DeleteSnapshotCommand).map((call) => call.args[0].input.SnapshotId);
    expect(deleted).toEqual(['snap-old']);
    expect(allowed(role, { action: 'ec2:DeleteSnapshot', resource: 'snapshot', resourceTags: sentTags })).toBe(true);

    // The evaluator can say no: another volume, untagged snapshots, tags added later.
    expect(
      allowed(role, { action: 'ec2:CreateSnapshot', resource: 'volume', resourceTags: { [DATA_VOLUME_TAG]: 'Other' } }),
    ).toBe(false);
    expect(allowed(role, { action: 'ec2:CreateSnapshot', resource: 'snapshot', requestTags: {} })).toBe(false);
    expect(allowed(role, { action: 'ec2:CreateTags', resource: 'snapshot', requestTags: sentTags })).toBe(false);
    expect(allowed(role, { action: 'ec2:DeleteSnapshot', resource: 'snapshot', resourceTags: {} })).toBe(false);
  });

  const tagList = (tags: Tags): Tag[] => Object.entries(tags).map(([Key, Value]) => ({ Key, Value }));
  const volumes = () => tagList(volumeTags);
});
