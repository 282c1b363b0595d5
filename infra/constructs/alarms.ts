// Status-check alarms: a failed system check recovers the instance onto healthy hardware (same instance id,
// volumes and address); a failed instance check reboots it. Optionally both notify an e-mail address.
import { Duration, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as actions from 'aws-cdk-lib/aws-cloudwatch-actions';
import type * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as subscriptions from 'aws-cdk-lib/aws-sns-subscriptions';
import { Construct } from 'constructs';

export interface AlarmsProps {
  instance: ec2.Instance;
  email?: string;
}

export class Alarms extends Construct {
  readonly systemCheck: cloudwatch.Alarm;
  readonly instanceCheck: cloudwatch.Alarm;
  readonly topic?: sns.Topic;

  constructor(scope: Construct, id: string, props: AlarmsProps) {
    super(scope, id);
    const statusCheck = (metricName: string) =>
      new cloudwatch.Metric({
        namespace: 'AWS/EC2',
        metricName,
        dimensionsMap: { InstanceId: props.instance.instanceId },
        statistic: 'Maximum',
        period: Duration.minutes(1),
      });

    this.systemCheck = new cloudwatch.Alarm(this, 'SystemStatusCheck', {
      metric: statusCheck('StatusCheckFailed_System'),
      threshold: 1,
      evaluationPeriods: 2,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
      alarmDescription:
        'The host of the ERP image search instance failed its system status check: recovering the instance.',
    });
    this.systemCheck.addAlarmAction(new actions.Ec2Action(actions.Ec2InstanceAction.RECOVER));

    this.instanceCheck = new cloudwatch.Alarm(this, 'InstanceStatusCheck', {
      metric: statusCheck('StatusCheckFailed_Instance'),
      threshold: 1,
      evaluationPeriods: 3,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.MISSING,
      alarmDescription: 'The ERP image search instance failed its instance status check: rebooting it.',
    });
    this.instanceCheck.addAlarmAction(new actions.Ec2Action(actions.Ec2InstanceAction.REBOOT));

    if (props.email) {
      this.topic = new sns.Topic(this, 'Notifications', { displayName: 'ERP image search alarms', enforceSSL: true });
      this.topic.addSubscription(new subscriptions.EmailSubscription(props.email));
      Validations.of(this.topic).acknowledge({
        id: 'AwsSolutions::AwsSolutions-SNS2',
        reason:
          'The topic carries only alarm state changes (no data). CloudWatch alarms cannot publish to a topic ' +
          'encrypted with the AWS-managed aws/sns key, and a customer-managed key would cost more than the ' +
          'rest of the monitoring.',
      });
      for (const alarm of [this.systemCheck, this.instanceCheck]) {
        alarm.addAlarmAction(new actions.SnsAction(this.topic));
        alarm.addOkAction(new actions.SnsAction(this.topic));
      }
    }
  }
}
