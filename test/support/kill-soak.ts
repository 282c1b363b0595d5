// The crash soak behind `npm run soak:kill` and its CI-sized test: runs the real server (node, the embedded
// store, a real ONNX model) as a child process, drives ingests, item deletes and wipes at it over HTTP, and
// kills it with SIGKILL at a random moment, round after round. After every restart it checks that the
// server came up, that files and points agree (the ops consistency check), and that no acknowledged change
// was lost: an item whose 201 arrived is there unless a delete or wipe of it was acknowledged; an item whose
// delete was acknowledged is gone. Operations cut off by the kill may have happened or not.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { checkConsistency } from '../../scripts/consistency.js';
import { ImageFiles } from '../../service/src/catalog/image-files.js';
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import { recordingReporter } from '../scripts/helpers.js';
import * as images from './images.js';
import { writeTestModel } from './onnx-model.js';

const SERVER = fileURLToPath(new URL('../../service/src/server.ts', import.meta.url));

export interface KillSoakOptions {
  rounds: number;
  /** Longest time a round runs before the kill (a random moment up to it). */
  maxRoundMs?: number;
  concurrency?: number;
  log?: (line: string) => void;
  /** A model to serve (default: a small generated one). */
  modelPath?: string;
}

export interface KillSoakResult {
  rounds: number;
  acknowledged: { ingests: number; deletes: number; wipes: number };
  lost: string[];
  cameBack: string[];
  inconsistentRounds: number;
  restarts: number;
  seconds: number;
}

type State = 'present' | 'absent' | 'unknown';

async function startServer(dataDir: string, modelPath: string): Promise<{ child: ChildProcess; url: string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', SERVER], {
    env: {
      ...process.env,
      PORT: '0',
      HOST: '127.0.0.1',
      DATA_DIR: dataDir,
      MODEL_PATH: modelPath,
      LOG_LEVEL: 'info',
      EMBED_QUEUE_MAX: '256',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let output = '';
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the server did not start in 60 s:\n${output}`)), 60_000);
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const match = /Server listening at (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve(match[1]!);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', onData);
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`the server exited with ${code} before listening:\n${output}`));
    });
  });
  return { child, url };
}

export async function runKillSoak(options: KillSoakOptions): Promise<KillSoakResult> {
  const started = Date.now();
  const log = options.log ?? (() => {});
  const dir = mkdtempSync(path.join(tmpdir(), 'kill-soak-'));
  const dataDir = path.join(dir, 'data');
  const modelPath =
    options.modelPath ?? writeTestModel({ dir: path.join(dir, 'models'), name: 'soak_model', dim: 64 }).onnxPath;
  const photos = await Promise.all(Array.from({ length: 16 }, (_, i) => images.jpeg(120, 90, i + 1)));
  const states = new Map<string, State>();
  /** Ingests in flight, and those a wipe overlapped (their outcome depends on the server's order). */
  const ingesting = new Set<string>();
  const overlapped = new Set<string>();
  const result: KillSoakResult = {
    rounds: options.rounds,
    acknowledged: { ingests: 0, deletes: 0, wipes: 0 },
    lost: [],
    cameBack: [],
    inconsistentRounds: 0,
    restarts: 0,
    seconds: 0,
  };
  let next = 0;
  let seed = 7;
  const random = () => (seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32;
  try {
    for (let round = 0; round < options.rounds; round++) {
      const { child, url } = await startServer(dataDir, modelPath);
      if (round > 0) result.restarts++;
      // Verify the state the previous kill left (the server is idle now).
      const bad = await verify(url, states, result);
      const check = await consistency(dataDir);
      if (!check.ok) result.inconsistentRounds++;
      const wrong = bad ? ` (lost: ${result.lost.join(' ')}; came back: ${result.cameBack.join(' ')})` : '';
      const agree = check.ok ? 'consistent' : `NOT consistent (${JSON.stringify(check)})`;
      log(
        `round ${round + 1}/${options.rounds}: restarted, ${states.size} items tracked, ${bad} wrong${wrong}, ` +
          `files and points ${agree}`,
      );
      // Work until a random moment, then kill.
      let killed = false;
      const killAt = 300 + random() * ((options.maxRoundMs ?? 3000) - 300);
      const killer = setTimeout(() => {
        killed = true;
        child.kill('SIGKILL');
      }, killAt);
      const worker = async () => {
        while (!killed) {
          const roll = random();
          const known = [...states].filter(([, state]) => state === 'present').map(([id]) => id);
          if (roll < 0.03) {
            // Wipe: items known to be there when it was sent are gone once it is acknowledged. Ingests in
            // flight at the same time may land before or after it: their outcome is unknown.
            const before = [...states].filter(([, state]) => state === 'present').map(([id]) => id);
            for (const id of states.keys()) states.set(id, 'unknown');
            for (const id of ingesting) overlapped.add(id);
            const ok = await request(url, 'DELETE', '/items');
            if (ok?.status === 200) {
              result.acknowledged.wipes++;
              for (const id of before) states.set(id, 'absent');
            }
          } else if (roll < 0.3 && known.length > 0) {
            const id = known[Math.floor(random() * known.length)]!;
            states.set(id, 'unknown');
            const ok = await request(url, 'DELETE', `/items/${encodeURIComponent(id)}`);
            if (ok?.status === 200) {
              states.set(id, 'absent');
              result.acknowledged.deletes++;
            }
          } else {
            const id = `item-${next++}`;
            states.set(id, 'unknown');
            ingesting.add(id);
            const form = new FormData();
            form.append('item_id', id);
            form.append('file', new Blob([photos[next % photos.length]!], { type: 'image/jpeg' }), 'p.jpg');
            const ok = await request(url, 'POST', '/ingest', form);
            ingesting.delete(id);
            if (ok?.status === 201) {
              if (!overlapped.has(id)) states.set(id, 'present');
              result.acknowledged.ingests++;
            }
          }
        }
      };
      await Promise.all(Array.from({ length: options.concurrency ?? 4 }, worker));
      clearTimeout(killer);
      await new Promise((resolve) =>
        child.exitCode !== null || child.signalCode ? resolve(null) : child.once('exit', resolve),
      );
    }
    // The last restart and check.
    const { child, url } = await startServer(dataDir, modelPath);
    result.restarts++;
    await verify(url, states, result);
    if (!(await consistency(dataDir)).ok) result.inconsistentRounds++;
    child.kill('SIGTERM');
    await new Promise((resolve) => child.once('exit', resolve));
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  result.seconds = Math.round((Date.now() - started) / 100) / 10;
  return result;
}

async function request(url: string, method: string, route: string, body?: FormData) {
  try {
    return await fetch(`${url}${route}`, { method, body, signal: AbortSignal.timeout(30_000) });
  } catch {
    return undefined; // killed mid-request: the operation's outcome is unknown
  }
}

async function verify(url: string, states: Map<string, State>, result: KillSoakResult): Promise<number> {
  let bad = 0;
  for (const [id, state] of states) {
    if (state === 'unknown') continue;
    const response = await fetch(`${url}/items/${encodeURIComponent(id)}`);
    if (state === 'present' && response.status !== 200) {
      result.lost.push(id);
      bad++;
    }
    if (state === 'absent' && response.status !== 404) {
      result.cameBack.push(id);
      bad++;
    }
    await response.arrayBuffer();
  }
  // What is known now, before the next round changes it: unknown items settle to what the server says.
  for (const [id, state] of states) {
    if (state !== 'unknown') continue;
    const response = await fetch(`${url}/items/${encodeURIComponent(id)}`);
    states.set(id, response.status === 200 ? 'present' : 'absent');
    await response.arrayBuffer();
  }
  return bad;
}

async function consistency(dataDir: string) {
  const store = openEmbeddedStore({ dataDir });
  try {
    const report = await checkConsistency({
      store,
      files: new ImageFiles(path.join(dataDir, 'images')),
      alias: 'items',
      reporter: recordingReporter(),
    });
    return {
      ok: report.ok,
      pointsWithoutFile: report.pointsWithoutFile.length,
      filesWithoutPoint: report.filesWithoutPoint.length,
    };
  } finally {
    await store.close();
  }
}
