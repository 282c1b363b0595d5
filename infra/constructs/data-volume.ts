// The data volume: everything the service keeps (images, Qdrant storage and snapshots, backups) lives here,
// not on the instance, so the instance can be replaced. It stays when the stack (or this construct) goes away.
// Do not rename this construct or its id: a new logical id would create an empty volume.
import { RemovalPolicy, Size, Tags } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import { Construct } from 'constructs';
import { DATA_VOLUME_TAG } from '../../service/src/lib/aws-tags.js';

export interface DataVolumeProps {
  availabilityZone: string;
  sizeGiB: number;
  removalPolicy: 'retain' | 'snapshot';
  /** Value of DATA_VOLUME_TAG. */
  stackName: string;
}

const REMOVAL: Record<DataVolumeProps['removalPolicy'], RemovalPolicy> = {
  retain: RemovalPolicy.RETAIN,
  snapshot: RemovalPolicy.SNAPSHOT,
};

export class DataVolume extends Construct {
  readonly volume: ec2.Volume;

  constructor(scope: Construct, id: string, props: DataVolumeProps) {
    super(scope, id);
    this.volume = new ec2.Volume(this, 'Volume', {
      availabilityZone: props.availabilityZone,
      size: Size.gibibytes(props.sizeGiB),
      volumeType: ec2.EbsDeviceVolumeType.GP3,
      encrypted: true,
      removalPolicy: REMOVAL[props.removalPolicy],
      volumeName: `${props.stackName}-data`,
    });
    Tags.of(this.volume).add(DATA_VOLUME_TAG, props.stackName);
  }
}
