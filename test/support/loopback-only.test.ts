import net from 'node:net';
import { describe, expect, it } from 'vitest';

describe('test network guard', () => {
  it('refuses a connection to a non-loopback address before it is made', () => {
    expect(() => net.connect({ host: '192.0.2.1', port: 80 })).toThrow(/tests may only connect to loopback/);
    expect(() => net.connect(80, '10.0.0.1')).toThrow(/tests may only connect to loopback/);
  });

  it('refuses a name that resolves outside loopback', async () => {
    const socket = net.connect({
      host: 'example.test',
      port: 80,
      lookup: (_host, _options, callback) => (callback as (e: null, a: string, f: number) => void)(null, '203.0.113.5', 4),
    });
    const error = await new Promise<Error>((resolve) => socket.on('error', resolve));
    expect(error.message).toMatch(/resolved to 203\.0\.113\.5/);
  });

  it('lets loopback through', async () => {
    const server = net.createServer((s) => s.end()).listen(0, '127.0.0.1');
    await new Promise((resolve) => server.once('listening', resolve));
    const { port } = server.address() as net.AddressInfo;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((resolve) => socket.once('connect', resolve));
    socket.destroy();
    server.close();
  });
});
