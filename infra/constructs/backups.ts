// Daily EBS snapshots of the data volume by Data Lifecycle Manager (selected by its tag), kept N days. The
// Qdrant-level snapshots run on the host (systemd timer from infra/user-data/install-backup-timer.sh).
import * as dlm from 'aws-cdk-lib/aws-dlm';
import * as iam from 'aws-cdk-lib/aws-iam';
import { Validations } from 'aws-cdk-lib';
import { Construct } from 'constructs';
import { CREATED_BY_DLM, CREATED_BY_TAG, DATA_VOLUME_TAG } from '../../service/src/lib/aws-tags.js';

export interface BackupsProps {
  /** Value of DATA_VOLUME_TAG on the volume to snapshot. */
  stackName: string;
  /** HH:MM, UTC. */
  time: string;
  retainCount: number;
}

export class Backups extends Construct {
  readonly policy: dlm.CfnLifecyclePolicy;

  constructor(scope: Construct, id: string, props: BackupsProps) {
    super(scope, id);
    const role = new iam.Role(this, 'LifecycleRole', {
      assumedBy: new iam.ServicePrincipal('dlm.amazonaws.com'),
      description: 'Lets Data Lifecycle Manager snapshot the ERP image search data volume',
      managedPolicies: [iam.ManagedPolicy.fromAwsManagedPolicyName('service-role/AWSDataLifecycleManagerServiceRole')],
    });
    Validations.of(role).acknowledge({
      id:
        'AwsSolutions::AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/' +
        'AWSDataLifecycleManagerServiceRole]',
      reason:
        'AWSDataLifecycleManagerServiceRole is the AWS-maintained policy made for DLM execution roles; DLM ' +
        'only acts on volumes the policy targets by tag.',
    });
    this.policy = new dlm.CfnLifecyclePolicy(this, 'DailySnapshots', {
      description: 'Daily snapshots of the ERP image search data volume',
      state: 'ENABLED',
      executionRoleArn: role.roleArn,
      policyDetails: {
        policyType: 'EBS_SNAPSHOT_MANAGEMENT',
        resourceTypes: ['VOLUME'],
        targetTags: [{ key: DATA_VOLUME_TAG, value: props.stackName }],
        schedules: [
          {
            name: 'daily',
            createRule: { interval: 24, intervalUnit: 'HOURS', times: [props.time] },
            retainRule: { count: props.retainCount },
            copyTags: true,
            tagsToAdd: [{ key: CREATED_BY_TAG, value: CREATED_BY_DLM }],
          },
        ],
      },
    });
  }
}
