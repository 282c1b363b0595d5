// The address rules on their own: no sockets, no DNS. fetch-url.test.ts checks them end to end.
import { describe, expect, it } from 'vitest';
import {
  canonicalHost,
  checkAddress,
  classifyAddress,
  isNamedHost,
  parseAddress,
  parseAllowList,
} from '../../../service/src/images/address-policy.js';

const NOTHING_ALLOWED = parseAllowList([]);

function verdict(text: string, host = 'victim.test', allow = NOTHING_ALLOWED) {
  const address = parseAddress(text);
  if (!address) throw new Error(`test table: ${text} does not parse`);
  return checkAddress(address, host, allow);
}

// [address, words the reason must contain, refused even when allow-listed]
const REFUSED: [string, RegExp, boolean][] = [
  ['127.0.0.1', /loopback/, false],
  ['127.255.255.254', /loopback/, false],
  ['10.0.0.1', /private/, false],
  ['172.16.0.1', /private/, false],
  ['172.31.255.255', /private/, false],
  ['192.168.1.1', /private/, false],
  ['100.64.0.1', /carrier-grade NAT/, false],
  ['100.127.255.255', /carrier-grade NAT/, false],
  ['169.254.169.254', /instance-metadata/, true],
  ['169.254.0.1', /link-local/, true],
  ['169.254.255.255', /link-local/, true],
  ['0.0.0.0', /unspecified/, false],
  ['0.1.2.3', /unspecified/, false],
  ['255.255.255.255', /broadcast/, false],
  ['224.0.0.1', /multicast/, false],
  ['239.255.255.250', /multicast/, false],
  ['192.0.2.1', /reserved or documentation/, false],
  ['198.51.100.7', /reserved or documentation/, false],
  ['203.0.113.9', /reserved or documentation/, false],
  ['198.18.0.1', /reserved/, false],
  ['192.0.0.8', /reserved/, false],
  ['240.0.0.1', /reserved/, false],
  ['::1', /loopback/, false],
  ['::', /unspecified/, false],
  ['fe80::1', /link-local \(fe80/, false],
  ['fc00::1', /unique-local/, false],
  ['fd12:3456::1', /unique-local/, false],
  ['fd00:ec2::254', /instance-metadata/, true],
  ['ff02::1', /multicast/, false],
  ['fec0::1', /site-local/, false],
  ['100::1', /discard/, false],
  ['2001:db8::1', /documentation|special-purpose|reserved/, false],
  ['2001::1', /Teredo/, false],
  ['3fff::1', /special-purpose|reserved/, false],
  ['4000::1', /outside the global unicast range/, false],
  // IPv4-mapped: judged as the IPv4 address itself.
  ['::ffff:127.0.0.1', /loopback/, false],
  ['::ffff:10.0.0.1', /private/, false],
  ['::ffff:169.254.169.254', /instance-metadata/, true],
  // IPv4-translated (RFC 6145), NAT64 (RFC 6052), 6to4 and IPv4-compatible forms carry an IPv4 address.
  ['::ffff:0:7f00:1', /IPv4-translated address of 127\.0\.0\.1, which is loopback/, false],
  ['64:ff9b::a00:1', /NAT64 address of 10\.0\.0\.1, which is private/, false],
  ['64:ff9b::a9fe:a9fe', /NAT64 address of 169\.254\.169\.254, which is the cloud instance-metadata/, true],
  ['64:ff9b:1::a00:1', /local-use NAT64/, false],
  ['2002:7f00:1::1', /6to4 address of 127\.0\.0\.1/, false],
  ['2002:c0a8:101::1', /6to4 address of 192\.168\.1\.1, which is private/, false],
  ['2002:a9fe:a9fe::1', /6to4 address of 169\.254\.169\.254/, true],
  ['::7f00:1', /IPv4-compatible address of 127\.0\.0\.1/, false],
  ['::808:808', /deprecated IPv4-compatible/, false],
];

const PUBLIC = [
  '8.8.8.8',
  '1.1.1.1',
  '93.184.216.34',
  '172.32.0.1', // just above 172.16.0.0/12
  '172.15.255.255', // just below it
  '100.128.0.1', // just above 100.64.0.0/10
  '169.253.255.255',
  '11.0.0.1',
  '2606:4700:4700::1111',
  '2a00:1450:4001:81a::200e',
  '::ffff:8.8.8.8',
  '64:ff9b::808:808', // NAT64 of a public address
  '2002:808:808::1', // 6to4 of a public address
];

describe('classifyAddress', () => {
  it.each(REFUSED)('refuses %s', (text, reason, always) => {
    const refusal = verdict(text);
    expect(refusal).not.toBeNull();
    expect(refusal!.reason).toMatch(reason);
    expect(refusal!.always).toBe(always);
  });

  it.each(PUBLIC)('accepts the public address %s', (text) => {
    expect(classifyAddress(parseAddress(text)!)).toBeNull();
  });
});

describe('parseAddress', () => {
  it('accepts canonical IPv4, IPv6 and bracketed IPv6; maps ::ffff:a.b.c.d to IPv4', () => {
    expect(parseAddress('10.0.0.1')?.toString()).toBe('10.0.0.1');
    expect(parseAddress('[::1]')?.toString()).toBe('::1');
    expect(parseAddress('::ffff:7f00:1')?.kind()).toBe('ipv4');
  });

  it('treats odd IPv4 spellings and zone ids as names, not addresses', () => {
    // The URL parser rewrites such hosts to dotted decimal before they get here; anywhere else they
    // must not silently become an address.
    for (const text of ['127.1', '0x7f.0.0.1', '0177.0.0.1', '2130706433', 'fe80::1%eth0', 'images.test', '']) {
      expect(parseAddress(text), text).toBeUndefined();
    }
  });
});

describe('IMAGE_URL_ALLOW', () => {
  it('a CIDR permits the private addresses inside it and nothing else', () => {
    const allow = parseAllowList(['10.0.5.0/24', 'fd12:3456::/32']);
    expect(verdict('10.0.5.3', 'any.test', allow)).toBeNull();
    expect(verdict('::ffff:10.0.5.3', 'any.test', allow)).toBeNull();
    expect(verdict('fd12:3456:1::9', 'any.test', allow)).toBeNull();
    expect(verdict('10.0.6.1', 'any.test', allow)?.reason).toMatch(/private/);
    expect(verdict('fd12:3457::1', 'any.test', allow)?.reason).toMatch(/unique-local/);
    expect(verdict('127.0.0.1', 'any.test', allow)?.reason).toMatch(/loopback/);
  });

  it('a hostname permits whatever it resolves to, matched exactly and case-insensitively', () => {
    const allow = parseAllowList(['erp.internal']);
    expect(verdict('10.9.9.9', 'erp.internal', allow)).toBeNull();
    expect(verdict('10.9.9.9', 'ERP.Internal.', allow)).toBeNull();
    expect(verdict('127.0.0.1', 'erp.internal', allow)).toBeNull();
    expect(verdict('10.9.9.9', 'files.erp.internal', allow)).not.toBeNull();
    expect(verdict('10.9.9.9', 'erp.internal.evil.test', allow)).not.toBeNull();
  });

  it('never permits the metadata addresses or 169.254.0.0/16, whatever it lists', () => {
    const allow = parseAllowList([
      '169.254.0.0/16',
      '169.254.169.254',
      'fd00::/8',
      '0.0.0.0/0',
      '::/0',
      'metadata.test',
    ]);
    for (const text of [
      '169.254.169.254',
      '169.254.10.10',
      'fd00:ec2::254',
      '::ffff:169.254.169.254',
      '64:ff9b::a9fe:a9fe',
    ]) {
      expect(verdict(text, 'metadata.test', allow)?.always, text).toBe(true);
    }
    // The same list does permit other private targets.
    expect(verdict('fd00::1', 'x.test', allow)).toBeNull();
    expect(verdict('10.0.0.1', 'x.test', allow)).toBeNull();
  });

  it('a single address entry is a /32 (or /128) and a named host', () => {
    const allow = parseAllowList([' 10.0.5.3 ', 'FD00::7']);
    expect(verdict('10.0.5.3', '10.0.5.3', allow)).toBeNull();
    expect(verdict('10.0.5.4', '10.0.5.4', allow)).not.toBeNull();
    expect(verdict('fd00::7', '[fd00::7]', allow)).toBeNull();
    expect(isNamedHost('10.0.5.3', allow)).toBe(true);
    expect(isNamedHost('[fd00::7]', allow)).toBe(true);
  });

  it('names hosts for IMAGE_URL_HEADERS only by hostname or single address, never by CIDR', () => {
    const allow = parseAllowList(['erp.internal', '10.0.0.0/8']);
    expect(isNamedHost('erp.internal', allow)).toBe(true);
    expect(isNamedHost('ERP.INTERNAL.', allow)).toBe(true);
    expect(isNamedHost('10.0.5.3', allow)).toBe(false);
    expect(isNamedHost('cdn.internal', allow)).toBe(false);
  });

  it.each([
    ['10.0.0.0/33', /not a valid CIDR/],
    ['10.1/16', /not a valid CIDR/],
    ['*.erp.internal', /wildcards are not supported/],
    ['127.1', /not a hostname/],
    ['0x7f.0.0.1', /not a hostname/],
    ['erp internal', /not a hostname/],
    ['http://erp.internal', /not a/],
    ['::ffff:10.0.0.0/104', /as an IPv4 CIDR/],
  ])('rejects the entry %s with a message naming IMAGE_URL_ALLOW', (entry, message) => {
    expect(() => parseAllowList([entry])).toThrow(message);
    expect(() => parseAllowList([entry])).toThrow(/IMAGE_URL_ALLOW/);
  });

  it('canonicalHost lowercases, drops a trailing dot and converts IDN to ASCII', () => {
    expect(canonicalHost('ERP.Internal.')).toBe('erp.internal');
    expect(canonicalHost('bücher.test')).toBe('xn--bcher-kva.test');
    expect(canonicalHost('[::FFFF:7F00:1]')).toBe('127.0.0.1');
  });
});
