// Test safety net (a vitest setup file, so it runs in every test process): every TCP connection must
// go to loopback (127.0.0.0/8, ::1). An IP destination outside loopback throws before connect(2); a
// hostname gets its lookup wrapped so that a non-loopback answer fails the connection first. Even a
// bug in the SSRF rules cannot make a test touch a private or public address. `connects` records every
// attempt that got through (tests use it to prove that a refused URL opened no connection).
import dns from 'node:dns';
import net, { type LookupFunction } from 'node:net';
import ipaddr from 'ipaddr.js';
import { afterEach, expect } from 'vitest';

export const connects: string[] = [];
export const violations: string[] = [];

const realConnect = net.Socket.prototype.connect;
const isLoopback = (address: string) => ipaddr.isValid(address) && ipaddr.process(address).range() === 'loopback';

type ConnectOptions = { host?: string; port?: number | string; path?: string | null; lookup?: LookupFunction };

function guardedConnect(this: net.Socket, ...args: unknown[]): net.Socket {
  let options: ConnectOptions;
  const first: unknown = Array.isArray(args[0]) ? (args[0] as unknown[])[0] : args[0];
  if (typeof first === 'object' && first !== null) {
    options = first;
  } else {
    // connect(port[, host][, listener]) or connect(path[, listener]): rewrite to the options form.
    const listener = args.find((arg) => typeof arg === 'function');
    options =
      typeof first === 'string' && !/^\d+$/.test(first)
        ? { path: first }
        : { port: Number(first), host: typeof args[1] === 'string' ? args[1] : undefined };
    args = listener ? [options, listener] : [options];
  }
  if (!options.path) {
    const host = options.host ?? 'localhost';
    if (net.isIP(host)) {
      if (!isLoopback(host)) {
        violations.push(host);
        throw new Error(`test guard: blocked a connection to ${host}; tests may only connect to loopback`);
      }
      connects.push(`${host}:${options.port}`);
    } else {
      const lookup = options.lookup ?? dns.lookup;
      options.lookup = (hostname, lookupOptions, callback) =>
        lookup(hostname, lookupOptions, (error, address, family) => {
          const list = typeof address === 'string' ? [address] : (address ?? []).map((entry) => entry.address);
          const outside = error ? [] : list.filter((entry) => !isLoopback(entry));
          if (outside.length > 0) {
            violations.push(...outside);
            return callback(
              Object.assign(
                new Error(`test guard: blocked ${outside.join(', ')}; tests may only connect to loopback`),
                { code: 'EGUARD' },
              ),
              address,
              family,
            );
          }
          if (!error) connects.push(...list.map((entry) => `${entry}:${options.port}`));
          callback(error, address, family);
        });
    }
  }
  return realConnect.apply(this, args as Parameters<typeof realConnect>);
}

net.Socket.prototype.connect = guardedConnect;

afterEach(() => {
  expect(violations.splice(0), 'connections to non-loopback addresses were attempted').toEqual([]);
});
