// Are we on EC2, and which instance and region? Asked of the instance metadata service with IMDSv2
// (a session token first; the stack requires it) and a short timeout, so that off EC2 the answer
// "no" comes within a second. Any failure means "not on EC2": callers decide what that implies.
const IMDS = 'http://169.254.169.254';

export interface Ec2Identity {
  instanceId: string;
  region: string;
}

export async function detectEc2(
  options: { timeoutMs?: number; fetch?: typeof fetch } = {},
): Promise<Ec2Identity | undefined> {
  const fetcher = options.fetch ?? fetch;
  const signal = AbortSignal.timeout(options.timeoutMs ?? 1000);
  try {
    const tokenResponse = await fetcher(`${IMDS}/latest/api/token`, {
      method: 'PUT',
      headers: { 'x-aws-ec2-metadata-token-ttl-seconds': '60' },
      signal,
    });
    if (!tokenResponse.ok) return undefined;
    const token = await tokenResponse.text();
    const documentResponse = await fetcher(`${IMDS}/latest/dynamic/instance-identity/document`, {
      headers: { 'x-aws-ec2-metadata-token': token },
      signal,
    });
    if (!documentResponse.ok) return undefined;
    const document = (await documentResponse.json()) as { instanceId?: unknown; region?: unknown };
    if (typeof document.instanceId !== 'string' || typeof document.region !== 'string') return undefined;
    return { instanceId: document.instanceId, region: document.region };
  } catch {
    return undefined;
  }
}
