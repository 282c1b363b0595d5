// A loopback HTTP server for download tests: each path serves bytes in slow chunks, or misbehaves on
// purpose (never answers, stalls mid-body, closes early), like a flaky mirror would.
import http from 'node:http';
import type net from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

export type Route =
  | { kind: 'file'; body: Buffer; chunks?: number; delayMs?: number }
  | { kind: 'status'; status: number }
  | { kind: 'silent' }
  | { kind: 'stall'; body: Buffer }
  | { kind: 'short'; body: Buffer };

export interface FileServer {
  url(path: string): string;
  requests: string[];
  close(): Promise<void>;
}

async function serve(route: Route, res: http.ServerResponse): Promise<void> {
  switch (route.kind) {
    case 'status':
      res.writeHead(route.status).end();
      return;
    case 'silent':
      return; // headers never come
    case 'stall':
    case 'short':
      res.writeHead(200, { 'content-length': route.body.length });
      res.write(route.body.subarray(0, route.body.length >> 1));
      if (route.kind === 'short') res.destroy();
      return; // 'stall': the rest never comes
    case 'file': {
      res.writeHead(200, { 'content-length': route.body.length });
      const chunks = route.chunks ?? 1;
      const size = Math.ceil(route.body.length / chunks);
      for (let at = 0; at < route.body.length; at += size) {
        res.write(route.body.subarray(at, at + size));
        await sleep(route.delayMs ?? 0);
      }
      res.end();
    }
  }
}

export async function startFileServer(routes: Record<string, Route>): Promise<FileServer> {
  const requests: string[] = [];
  const server = http.createServer((req, res) => {
    requests.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    void (route ? serve(route, res) : serve({ kind: 'status', status: 404 }, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as net.AddressInfo;
  return {
    url: (path) => `http://127.0.0.1:${port}${path}`,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
