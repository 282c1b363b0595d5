// HTTPS in front of the API (only with -c domainName=...): an Application Load Balancer with an ACM certificate.
// Chosen over a TLS proxy on the instance (Caddy/Traefik with Let's Encrypt) because ACM validates by DNS, so
// 443 and 80 stay limited to allowedCidr (Let's Encrypt's HTTP challenge needs port 80 open to the whole
// internet, its DNS challenge needs Route 53 write access on the instance role, which every container could
// use), an existing ACM certificate can be used (ACM certificates cannot be installed on an instance), and
// renewal is AWS's job. The price (≈ 25 USD a month, README) buys those. The ALB adds HSTS itself; the instance
// accepts 8020 only from the load balancer's security group.
import { Duration, RemovalPolicy, Validations } from 'aws-cdk-lib';
import * as acm from 'aws-cdk-lib/aws-certificatemanager';
import * as ec2 from 'aws-cdk-lib/aws-ec2';
import * as elbv2 from 'aws-cdk-lib/aws-elasticloadbalancingv2';
import * as elbv2Targets from 'aws-cdk-lib/aws-elasticloadbalancingv2-targets';
import * as route53 from 'aws-cdk-lib/aws-route53';
import * as route53Targets from 'aws-cdk-lib/aws-route53-targets';
import * as s3 from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import type { TlsConfig } from '../config.js';
import { API_PORT, peer } from './network.js';

/** Sent with every HTTPS answer: browsers use only https for this name for a year. */
export const HSTS = 'max-age=31536000';
const HSTS_ATTRIBUTE = 'routing.http.response.strict_transport_security.header_value';

export interface HttpsEndpointProps {
  tls: TlsConfig;
  vpc: ec2.IVpc;
  /** Public subnets in two zones (an ALB needs two). */
  subnets: ec2.ISubnet[];
  instance: ec2.Instance;
  /** The instance's security group: gets 8020 from the load balancer only. */
  instanceSecurityGroup: ec2.ISecurityGroup;
  /** Who may reach 443 (and the redirect on 80): ERPNext and the clerks' networks. */
  allowedCidrs: string[];
}

export class HttpsEndpoint extends Construct {
  readonly loadBalancer: elbv2.ApplicationLoadBalancer;
  readonly securityGroup: ec2.SecurityGroup;
  readonly certificateArn: string;
  readonly url: string;

  constructor(scope: Construct, id: string, props: HttpsEndpointProps) {
    super(scope, id);
    const { tls } = props;
    this.url = `https://${tls.domainName}`;

    this.securityGroup = new ec2.SecurityGroup(this, 'SecurityGroup', {
      vpc: props.vpc,
      description: `ERP image search load balancer: HTTPS (and the redirect on 80) from allowedCidr only`,
      allowAllOutbound: false, // the target group adds the one egress it needs: 8020 to the instance
    });
    for (const cidr of props.allowedCidrs) {
      this.securityGroup.addIngressRule(peer(cidr), ec2.Port.tcp(443), `Image search API (HTTPS) from ${cidr}`);
      this.securityGroup.addIngressRule(peer(cidr), ec2.Port.tcp(80), `Redirect to HTTPS for ${cidr}`);
    }

    const logs = new s3.Bucket(this, 'AccessLogs', {
      encryption: s3.BucketEncryption.S3_MANAGED, // the only encryption ALB access logs support
      blockPublicAccess: s3.BlockPublicAccess.BLOCK_ALL,
      enforceSSL: true,
      lifecycleRules: [{ expiration: Duration.days(90) }],
      removalPolicy: RemovalPolicy.RETAIN,
    });
    Validations.of(logs).acknowledge({
      id: 'AwsSolutions::AwsSolutions-S1',
      reason:
        "This bucket only receives the load balancer's access logs; logging access to the log bucket would " +
        'need yet another bucket. Nothing else is stored here and nothing reads it but the operator.',
    });

    this.loadBalancer = new elbv2.ApplicationLoadBalancer(this, 'LoadBalancer', {
      vpc: props.vpc,
      vpcSubnets: { subnets: props.subnets },
      internetFacing: true,
      securityGroup: this.securityGroup,
      dropInvalidHeaderFields: true,
      http2Enabled: true,
    });
    this.loadBalancer.logAccessLogs(logs, 'alb');

    // The operator's public zone, by id only: no lookup, so synth stays offline.
    const zone = tls.hostedZoneId ? route53.HostedZone.fromHostedZoneId(this, 'Zone', tls.hostedZoneId) : undefined;
    if (tls.certificateArn) {
      this.certificateArn = acm.Certificate.fromCertificateArn(this, 'Certificate', tls.certificateArn).certificateArn;
    } else if (zone) {
      this.certificateArn = new acm.Certificate(this, 'Certificate', {
        domainName: tls.domainName,
        validation: acm.CertificateValidation.fromDns(zone),
      }).certificateArn;
    } else {
      throw new Error('HTTPS needs hostedZoneId or certificateArn (checked by the configuration)');
    }

    const https = this.loadBalancer.addListener('Https', {
      protocol: elbv2.ApplicationProtocol.HTTPS,
      port: 443,
      certificates: [elbv2.ListenerCertificate.fromArn(this.certificateArn)],
      sslPolicy: elbv2.SslPolicy.RECOMMENDED_TLS,
      open: false, // ingress comes from allowedCidr above, never 0.0.0.0/0
    });
    https.setAttribute(HSTS_ATTRIBUTE, HSTS);
    https.addTargets('Api', {
      protocol: elbv2.ApplicationProtocol.HTTP,
      port: API_PORT,
      targets: [new elbv2Targets.InstanceTarget(props.instance, API_PORT)],
      healthCheck: { path: '/health', healthyHttpCodes: '200', interval: Duration.seconds(15) },
      deregistrationDelay: Duration.seconds(30),
    });
    props.instanceSecurityGroup.connections.allowFrom(
      this.securityGroup,
      ec2.Port.tcp(API_PORT),
      'Image search API from the HTTPS load balancer only',
    );

    this.loadBalancer.addListener('Http', {
      protocol: elbv2.ApplicationProtocol.HTTP,
      port: 80,
      open: false,
      defaultAction: elbv2.ListenerAction.redirect({ protocol: 'HTTPS', port: '443', permanent: true }),
    });

    if (zone) {
      new route53.ARecord(this, 'DnsRecord', {
        zone,
        recordName: `${tls.domainName}.`, // fully qualified: the zone's own name is not known offline
        target: route53.RecordTarget.fromAlias(new route53Targets.LoadBalancerTarget(this.loadBalancer)),
      });
    }
  }
}
