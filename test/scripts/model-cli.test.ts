// `npm run model` as an operator runs it: a separate process (node + tsx). Exit codes, the JSON summary on
// stdout, one-line failures on stderr. Downloads go only to a loopback server (a child process is not
// covered by the test's loopback guard, so no run here may use the default URL).
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startFileServer } from '../support/file-server.js';

const dir = mkdtempSync(path.join(tmpdir(), 'model-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function model(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/model.ts', ...args], {
      env: { PATH: process.env.PATH, HOME: process.env.HOME, NODE_OPTIONS: '', ONNXRUNTIME_NODE_INSTALL: 'skip' },
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

describe('npm run model', () => {
  it('writes a model, proves it loads, and prints one JSON summary', async () => {
    const out = path.join(dir, 'random', 'efficientnet_b0.onnx');
    const { code, stdout, stderr } = await model(['--random-weights', '--out', out]);
    expect(code).toBe(0);
    const summary = JSON.parse(stdout);
    expect(summary).toMatchObject({ onnxPath: out, weights: 'random(seed=0)' });
    expect(summary.sha256).toBe(createHash('sha256').update(readFileSync(out)).digest('hex'));
    expect(stderr).toMatch(/^Wrote .* onnxruntime loads it \(1280-d\)\.\n$/);
  });

  it('exits 2 with the usage on a wrong command line', async () => {
    for (const args of [['--bogus'], ['--random-weights', '--checkpoint', 'x.pth'], ['--out', 'model.bin']]) {
      const { code, stderr } = await model(args);
      expect(code, args.join(' ')).toBe(2);
      expect(stderr).toContain('Usage: npm run model --');
    }
  });

  it('exits 1 with one line when the checkpoint is refused, and writes nothing', async () => {
    const out = path.join(dir, 'refused', 'efficientnet_b0.onnx');
    const { code, stderr } = await model(['--checkpoint', 'test/fixtures/checkpoint/hostile.pth', '--out', out]);
    expect(code).toBe(1);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).toMatch(/names posix\.system.*refused/);
    expect(existsSync(path.dirname(out))).toBe(false);
  });

  it('exits 1 when a download from a mirror is not a checkpoint, leaving nothing behind', async () => {
    const body = randomBytes(4096);
    const name = `/mirror/efficientnet_b0-${createHash('sha256').update(body).digest('hex').slice(0, 8)}.pth`;
    const server = await startFileServer({ [name]: { kind: 'file', body } });
    const out = path.join(dir, 'mirror', 'efficientnet_b0.onnx');
    try {
      const { code, stderr } = await model(['--url', server.url(name), '--out', out]);
      expect(code).toBe(1);
      expect(stderr).toMatch(/Downloading efficientnet_b0-[0-9a-f]{8}\.pth: 0\.0 MB/); // plain lines: not a TTY
      expect(stderr).toMatch(/is not a readable torch\.save archive: it is not a zip archive/);
    } finally {
      await server.close();
    }
    expect(readdirSync(path.dirname(out))).toEqual([]);
  });
});
