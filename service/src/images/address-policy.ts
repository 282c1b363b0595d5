// Which IP addresses an image_url may reach. The API runs on EC2, so anything that is not a public
// unicast address is refused unless IMAGE_URL_ALLOW names it; link-local 169.254.0.0/16 (home of the
// instance-metadata service) and fd00:ec2::254 are refused even then. IPv6 forms that carry an IPv4
// address (mapped, translated, NAT64, 6to4, IPv4-compatible) are judged by that IPv4 address.
import { domainToASCII } from 'node:url';
import ipaddr from 'ipaddr.js';

export type IpAddress = ipaddr.IPv4 | ipaddr.IPv6;

export interface Refusal {
  /** Human-readable reason, e.g. "private (RFC 1918)". */
  reason: string;
  /** True for metadata/link-local addresses that IMAGE_URL_ALLOW cannot permit. */
  always: boolean;
}

export interface AllowList {
  /** Canonical hostnames (lowercase, ASCII, no trailing dot) and bare IP entries (canonical text). */
  names: ReadonlySet<string>;
  cidrs: ReadonlyArray<readonly [IpAddress, number]>;
}

const V4_REASONS: Record<string, string> = {
  unspecified: 'unspecified (0.0.0.0/8)',
  broadcast: 'the broadcast address',
  multicast: 'multicast (224.0.0.0/4)',
  loopback: 'loopback (127.0.0.0/8)',
  carrierGradeNat: 'carrier-grade NAT (100.64.0.0/10)',
  private: 'private (RFC 1918)',
  reserved: 'a reserved or documentation range',
  as112: 'an AS112 DNS sink range',
  amt: 'an AMT relay anycast range',
};

const V6_REASONS: Record<string, string> = {
  unspecified: 'unspecified (::)',
  loopback: 'loopback (::1)',
  linkLocal: 'link-local (fe80::/10)',
  multicast: 'multicast (ff00::/8)',
  uniqueLocal: 'unique-local (fc00::/7)',
  deprecatedSiteLocal: 'site-local (fec0::/10)',
  discard: 'the discard prefix (100::/64)',
  rfc6052: 'a local-use NAT64 prefix (64:ff9b:1::/48)',
  teredo: 'Teredo tunnelling (2001::/32)',
  reserved: 'a reserved or documentation range',
  segmentRouting: 'segment routing (5f00::/16)',
};

const METADATA_V6 = ipaddr.IPv6.parse('fd00:ec2::254');
const GLOBAL_UNICAST_V6 = ipaddr.IPv6.parseCIDR('2000::/3');
const NAT64_WELL_KNOWN = ipaddr.IPv6.parseCIDR('64:ff9b::/96');
const IPV4_COMPATIBLE = ipaddr.IPv6.parseCIDR('::/96');

/** Parses an address as it comes from DNS or a URL (brackets allowed); IPv4-mapped IPv6 becomes IPv4. */
export function parseAddress(text: string): IpAddress | undefined {
  const bare = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  // Only canonical forms: "127.1" or "0x7f.1" are names to the resolver, and the URL parser has
  // already rewritten such hosts to dotted decimal.
  if (ipaddr.IPv4.isValidFourPartDecimal(bare)) return ipaddr.IPv4.parse(bare);
  if (!ipaddr.IPv6.isValid(bare) || bare.includes('%')) return undefined;
  const v6 = ipaddr.IPv6.parse(bare);
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address() : v6;
}

/** Why an address is not a public unicast destination, or null if it is one. */
export function classifyAddress(address: IpAddress): Refusal | null {
  if (address.kind() === 'ipv4') return classifyV4(address as ipaddr.IPv4);
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return classifyV4(v6.toIPv4Address());
  if (v6.match(METADATA_V6, 128))
    return { reason: 'the cloud instance-metadata address (fd00:ec2::254)', always: true };
  const range = v6.range();
  if (range === 'unspecified' || range === 'loopback') return { reason: V6_REASONS[range], always: false };

  const embedded = embeddedIPv4(v6);
  if (embedded) {
    const inner = classifyV4(embedded.v4);
    if (inner)
      return {
        reason: `${embedded.form} of ${embedded.v4.toString()}, which is ${inner.reason}`,
        always: inner.always,
      };
    // Deprecated (RFC 4291) and never a real destination; the other forms reach the public IPv4 address.
    if (embedded.form === 'an IPv4-compatible address')
      return { reason: 'a deprecated IPv4-compatible address (::/96)', always: false };
    return null;
  }
  if (range !== 'unicast') return { reason: V6_REASONS[range] ?? `a special-purpose range (${range})`, always: false };
  if (!v6.match(GLOBAL_UNICAST_V6)) return { reason: 'outside the global unicast range 2000::/3', always: false };
  return null;
}

function classifyV4(address: ipaddr.IPv4): Refusal | null {
  const range = address.range();
  if (range === 'unicast') return null;
  if (range === 'linkLocal') {
    const metadata = address.toString() === '169.254.169.254';
    return {
      reason: metadata
        ? 'the cloud instance-metadata address'
        : 'link-local (169.254.0.0/16, where the instance-metadata service lives)',
      always: true,
    };
  }
  return { reason: V4_REASONS[range] ?? `a special-purpose range (${range})`, always: false };
}

function embeddedIPv4(address: ipaddr.IPv6): { v4: ipaddr.IPv4; form: string } | undefined {
  const p = address.parts;
  const low = (hi: number, lo: number) => new ipaddr.IPv4([hi >> 8, hi & 0xff, lo >> 8, lo & 0xff]);
  switch (address.range()) {
    case 'rfc6145':
      return { v4: low(p[6], p[7]), form: 'an IPv4-translated address' };
    case 'rfc6052':
      return address.match(NAT64_WELL_KNOWN) ? { v4: low(p[6], p[7]), form: 'a NAT64 address' } : undefined;
    case '6to4':
      return { v4: low(p[1], p[2]), form: 'a 6to4 address' };
    default:
      return address.match(IPV4_COMPATIBLE) ? { v4: low(p[6], p[7]), form: 'an IPv4-compatible address' } : undefined;
  }
}

/** Lowercase ASCII hostname without trailing dot; IP literals in canonical text (brackets dropped). */
export function canonicalHost(host: string): string {
  const address = parseAddress(host);
  if (address) return address.toString();
  return domainToASCII(host.toLowerCase()).replace(/\.$/, '');
}

const HOSTNAME = /^(?=.{1,253}$)([a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)(\.[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?)*$/;

/**
 * Compiles IMAGE_URL_ALLOW entries: CIDRs (10.0.5.0/24, fd12::/64), single addresses (10.0.5.3,
 * treated as a /32 or /128 and as a named host) and hostnames (exact, case-insensitive, no wildcards).
 * Throws an Error naming the first bad entry, so a typo fails at start-up instead of refusing silently.
 */
export function parseAllowList(entries: readonly string[]): AllowList {
  const names = new Set<string>();
  const cidrs: [IpAddress, number][] = [];
  for (const raw of entries) {
    const entry = raw.trim();
    if (entry.includes('/')) {
      cidrs.push(parseCidr(entry));
      continue;
    }
    const address = parseAddress(entry);
    if (address) {
      names.add(address.toString());
      cidrs.push([address, address.kind() === 'ipv4' ? 32 : 128]);
      continue;
    }
    const name = canonicalHost(entry);
    if (!HOSTNAME.test(name) || /^[0-9.]+$|^0x/i.test(name)) {
      throw new Error(
        `IMAGE_URL_ALLOW: ${JSON.stringify(raw)} is not a hostname, an IP address in canonical form or a CIDR ` +
          '(examples: erp.internal, 10.0.5.3, 10.0.5.0/24, fd12:3456::/64; wildcards are not supported).',
      );
    }
    names.add(name);
  }
  return { names, cidrs };
}

function parseCidr(entry: string): [IpAddress, number] {
  const valid =
    ipaddr.IPv4.isValidCIDRFourPartDecimal(entry) || (ipaddr.IPv6.isValidCIDR(entry) && !entry.includes('%'));
  if (!valid) {
    throw new Error(
      `IMAGE_URL_ALLOW: ${JSON.stringify(entry)} is not a valid CIDR (examples: 10.0.5.0/24, fd12:3456::/64).`,
    );
  }
  const [network, bits] = ipaddr.parseCIDR(entry);
  if (network.kind() === 'ipv6' && (network as ipaddr.IPv6).isIPv4MappedAddress()) {
    throw new Error(
      `IMAGE_URL_ALLOW: write ${JSON.stringify(entry)} as an IPv4 CIDR; mapped addresses are checked as IPv4.`,
    );
  }
  return [network, bits];
}

/**
 * Null when `address` (one resolved address of `host`) may be reached, otherwise why not. An allowed
 * hostname permits whatever it resolves to and an allowed CIDR the addresses inside it, except the
 * always-refused metadata/link-local addresses.
 */
export function checkAddress(address: IpAddress, host: string, allow: AllowList): Refusal | null {
  const refusal = classifyAddress(address);
  if (!refusal || refusal.always) return refusal;
  if (allow.names.has(canonicalHost(host))) return null;
  const inAllowedRange = allow.cidrs.some(
    ([network, bits]) => network.kind() === address.kind() && address.match(network, bits),
  );
  return inAllowedRange ? null : refusal;
}

/** True when IMAGE_URL_ALLOW names this host itself (not merely a CIDR containing its address). */
export function isNamedHost(host: string, allow: AllowList): boolean {
  return allow.names.has(canonicalHost(host));
}
