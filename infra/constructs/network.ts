// The network: a small VPC with one public subnet in the pinned AZ (no NAT gateway: the host has a public
// address), plus a second one in another zone when HTTPS is on (a load balancer spans two zones; adding it
// changes nothing of the first), and the host's security group. Port 8020 opens only to the CIDRs given here
// (none with HTTPS: then only the load balancer reaches it); Qdrant's 6333 never leaves the host (compose
// publishes no port for it); 22 only when sshCidr is given.
import { RemovalPolicy } from 'aws-cdk-lib';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';

export const API_PORT = 8020;

export interface NetworkProps {
  /** The instance's zone first; a second one only for the load balancer. */
  availabilityZones: string[];
  /** Canonical CIDRs allowed to reach 8020 directly; empty keeps the port closed to the outside. */
  apiCidrs: string[];
  sshCidr?: string;
}

export const peer = (cidr: string) => (cidr.includes(':') ? ec2.Peer.ipv6(cidr) : ec2.Peer.ipv4(cidr));

export class Network extends Construct {
  readonly vpc: ec2.Vpc;
  readonly securityGroup: ec2.SecurityGroup;

  constructor(scope: Construct, id: string, props: NetworkProps) {
    super(scope, id);
    // Rejected connections only: enough to see who knocks, cheap at this traffic.
    const flowLogs = new logs.LogGroup(this, 'RejectedFlows', {
      retention: logs.RetentionDays.ONE_MONTH,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.vpc = new ec2.Vpc(this, 'Vpc', {
      ipAddresses: ec2.IpAddresses.cidr('10.20.0.0/16'),
      availabilityZones: props.availabilityZones,
      natGateways: 0,
      subnetConfiguration: [{ name: 'public', subnetType: ec2.SubnetType.PUBLIC, cidrMask: 24 }],
      restrictDefaultSecurityGroup: false, // nothing uses it; restricting it would add a Lambda custom resource
      flowLogs: {
        rejected: {
          destination: ec2.FlowLogDestination.toCloudWatchLogs(flowLogs),
          trafficType: ec2.FlowLogTrafficType.REJECT,
        },
      },
    });

    this.securityGroup = new ec2.SecurityGroup(this, 'HostSecurityGroup', {
      vpc: this.vpc,
      // Never edit: a new description replaces the security group.
      description:
        `ERP image search host: API ${API_PORT} from ERPNext only; outbound for packages, AWS APIs ` + `and image URLs`,
      allowAllOutbound: true,
    });
    for (const cidr of props.apiCidrs) {
      this.securityGroup.addIngressRule(peer(cidr), ec2.Port.tcp(API_PORT), `Image search API from ERPNext (${cidr})`);
    }
    if (props.sshCidr) {
      this.securityGroup.addIngressRule(
        peer(props.sshCidr),
        ec2.Port.tcp(22),
        `SSH from the admin network (${props.sshCidr}), sshCidr`,
      );
    }
  }
}
