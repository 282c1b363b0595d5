// The loopback guard itself (test/support/loopback-only.ts, loaded as a setup file in every process).
import http from 'node:http';
import net, { type LookupFunction } from 'node:net';
import { describe, expect, it } from 'vitest';
import { connects, violations } from './loopback-only.js';

const answering =
  (address: string): LookupFunction =>
  (_host, options, callback) =>
    options.all ? callback(null, [{ address, family: 4 }]) : callback(null, address, 4);

describe('test network guard', () => {
  it('blocks a connection to a non-loopback IP before connect(2)', () => {
    const socket = new net.Socket();
    socket.on('error', () => {});
    expect(() => socket.connect({ host: '192.0.2.1', port: 9 })).toThrow(/tests may only connect to loopback/);
    expect(() => net.connect(80, '10.0.0.1')).toThrow(/tests may only connect to loopback/);
    expect(violations.splice(0)).toEqual(['192.0.2.1', '10.0.0.1']);
  });

  it('blocks a hostname whose lookup answers a non-loopback address', async () => {
    const socket = net.connect({ host: 'guard.test', port: 9, lookup: answering('203.0.113.5') });
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => socket.once('error', resolve));
    expect(error.code).toBe('EGUARD');
    expect(violations.splice(0)).toEqual(['203.0.113.5']);
  });

  it('also sees the sockets http.request opens', async () => {
    const request = http.get({ host: 'guard.test', port: 9, agent: false, lookup: answering('10.0.0.2') });
    const error = await new Promise<NodeJS.ErrnoException>((resolve) => request.once('error', resolve));
    expect(error.code).toBe('EGUARD');
    expect(violations.splice(0)).toEqual(['10.0.0.2']);
  });

  it('lets loopback through and records it', async () => {
    const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as net.AddressInfo;
    connects.length = 0;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    expect(connects).toEqual([`127.0.0.1:${port}`]);
    socket.destroy();
    server.close();
  });
});
