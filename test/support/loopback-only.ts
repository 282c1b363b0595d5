// Test safety net (a vitest setup file): every TCP connection a test opens must go to loopback
// (127.0.0.0/8 or ::1). A connection anywhere else throws before any packet leaves, so even a bug in
// the SSRF rules cannot make a test touch a private or public address.
import dns from 'node:dns';
import net from 'node:net';

const isLoopback = (address: string) => /^127\./.test(address) || address === '::1' || /^::ffff:127\./i.test(address);

function refuse(target: string): never {
  throw new Error(`Test network guard: refused a connection to ${target}; tests may only connect to loopback.`);
}

const originalConnect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function guardedConnect(this: net.Socket, ...args: unknown[]) {
  const first = args[0];
  const options = (Array.isArray(first) ? first[0] : first) as net.NetConnectOpts | number | string;
  if (typeof options === 'object' && options !== null && !('path' in options && options.path)) {
    const tcp = options as net.TcpNetConnectOpts;
    const host = tcp.host ?? 'localhost';
    if (net.isIP(host)) {
      if (!isLoopback(host)) refuse(host);
    } else {
      // A name: check whatever it resolves to, through the caller's lookup if it brought one.
      const lookup = (tcp.lookup ?? dns.lookup) as typeof dns.lookup;
      tcp.lookup = ((hostname: string, lookupOptions: dns.LookupOptions, callback: (...result: unknown[]) => void) =>
        lookup(hostname, lookupOptions, (error: NodeJS.ErrnoException | null, address: string | dns.LookupAddress[], family?: number) => {
          if (error) return callback(error);
          const addresses = Array.isArray(address) ? address.map((entry) => entry.address) : [address];
          const outside = addresses.find((a) => !isLoopback(a));
          if (outside) return callback(new Error(`Test network guard: ${hostname} resolved to ${outside}; tests may only connect to loopback.`));
          callback(null, address, family);
        })) as typeof dns.lookup;
    }
  }
  return originalConnect.apply(this, args as Parameters<typeof originalConnect>);
} as typeof net.Socket.prototype.connect;
