// The TypeScript converter against the Python recipe: Debian's torch saves an EfficientNet-B0 state_dict
// with random weights and non-trivial batch-norm statistics (test/models/random_checkpoint.py);
// models/export.py exports it with torch.onnx, the converter builds its own graph, and both must embed the
// committed photos alike through the service's own preprocessing and loader. Needs python3-torch.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertCheckpoint, ensureModel } from '../../service/src/embedding/checkpoint/convert.js';
import { CheckpointError } from '../../service/src/embedding/checkpoint/errors.js';
import { loadModel, type OnnxModel } from '../../service/src/embedding/model.js';
import { preprocess } from '../../service/src/images/preprocess.js';
import { startFileServer } from '../support/file-server.js';
import { EFFICIENTNET_B0_SIDECAR } from '../support/onnx-model.js';

const PYTHON = process.env.EXPORT_PYTHON ?? '/usr/bin/python3';
const torchMissing = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' }).status !== 0;
if (torchMissing) {
  console.log(
    `SKIPPED converter parity test (test/models/convert.test.ts): ${PYTHON} cannot import torch and torchvision ` +
      '(install python3-torch python3-torchvision).',
  );
}

const PHOTOS = 'test/fixtures/parity';
const photos = readdirSync(PHOTOS)
  .filter((name) => !name.includes('.ref.'))
  .sort();
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');
const dot = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i], 0);
const json = (file: string) => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;

describe.skipIf(torchMissing)('checkpoint converter vs models/export.py (torch)', () => {
  const dir = mkdtempSync(path.join(tmpdir(), 'convert-test-'));
  const checkpoint = path.join(dir, 'checkpoints', 'random.pth');
  const torchOnnx = path.join(dir, 'torch', 'efficientnet_b0.onnx');
  const ourOnnx = path.join(dir, 'ours', 'efficientnet_b0.onnx');
  const models: OnnxModel[] = [];
  let tensors: Float32Array[];

  beforeAll(async () => {
    execFileSync(PYTHON, ['test/models/random_checkpoint.py', path.dirname(checkpoint)], { stdio: 'pipe' });
    execFileSync(PYTHON, ['models/export.py', '--checkpoint', checkpoint, '--out', torchOnnx], { stdio: 'pipe' });
    await convertCheckpoint(checkpoint, ourOnnx);
    models.push(await loadModel(torchOnnx, { threads: 1 }), await loadModel(ourOnnx, { threads: 1 }));
    tensors = await Promise.all(
      photos.map((name) => preprocess(readFileSync(path.join(PHOTOS, name)), models[0].manifest, { maxPixels: 1e8 })),
    );
  }, 300_000);
  afterAll(async () => {
    await Promise.all(models.map((model) => model.close()));
    rmSync(dir, { recursive: true, force: true });
  });

  const embed = (model: OnnxModel) => model.run(tensors.map((tensor) => tensor.slice()));

  it('embeds every photo like torch (cosine >= 0.99999), and different photos differently', async () => {
    const [theirs, ours] = [await embed(models[0]), await embed(models[1])];
    for (const [i, name] of photos.entries()) {
      expect(dot(theirs[i], ours[i]), name).toBeGreaterThanOrEqual(0.99999);
    }
    // The weights are not degenerate: a test on vectors that are all alike would prove nothing.
    for (const vectors of [theirs, ours]) {
      for (let i = 0; i < photos.length; i++) {
        for (let j = i + 1; j < photos.length; j++) {
          expect(dot(vectors[i], vectors[j]), `${photos[i]} vs ${photos[j]}`).toBeLessThan(0.95);
        }
      }
    }
  });

  it('has a dynamic batch axis: a batch gives what single runs give', async () => {
    const batch = await embed(models[1]);
    const single = await models[1].run([tensors[2].slice()]);
    expect(dot(batch[2], single[0])).toBeGreaterThan(0.999999);
  });

  it("writes export.py's sidecar contract with the checkpoint's provenance and the model's hash", () => {
    const theirs = json(torchOnnx.replace(/onnx$/, 'json'));
    const ours = json(ourOnnx.replace(/onnx$/, 'json'));
    // Not torchvision's ImageNet file: both name the model for custom weights.
    const custom = { ...EFFICIENTNET_B0_SIDECAR, name: 'efficientnet_b0_custom' };
    expect(ours).toMatchObject(custom);
    expect(theirs).toMatchObject(custom);
    const pick = (sidecar: Record<string, unknown>) => [sidecar.weights, sidecar.source, sidecar.checkpoint_sha256];
    expect(pick(ours)).toEqual(pick(theirs));
    expect(ours).toMatchObject({ weights: 'custom', source: 'random.pth', checkpoint_sha256: sha256(checkpoint) });
    expect(ours.sha256).toBe(sha256(ourOnnx));
    expect(theirs.sha256).toBe(sha256(torchOnnx));
  });

  it('converts the same checkpoint to the same bytes', async () => {
    const again = path.join(dir, 'again', 'efficientnet_b0.onnx');
    const written = await convertCheckpoint(checkpoint, again);
    expect(written.sha256).toBe(sha256(ourOnnx));
  });

  it('explains what is wrong with a checkpoint that is not a plain EfficientNet-B0 state_dict', async () => {
    const refused = async (name: string) => {
      const error = await convertCheckpoint(path.join(path.dirname(checkpoint), name), path.join(dir, 'no', 'x.onnx'))
        .then(() => undefined)
        .catch((e: unknown) => e);
      expect(error, name).toBeInstanceOf(CheckpointError);
      return (error as Error).message;
    };
    expect(await refused('broken.pth')).toMatch(
      /missing \(1\): features\.3\.1\.block\.1\.0\.weight\. unexpected \(1\): features\.9\.0\.weight\. wrong shape \(1\): features\.0\.1\.weight is float32 \[8\], expected \[32\]/,
    );
    expect(await refused('half.pth')).toMatch(/torch\.HalfStorage/);
    expect(await refused('training.pth')).toMatch(/a training checkpoint\?/);
    expect(await refused('dataparallel.pth')).toMatch(/saved from DataParallel/);
    expect(await refused('legacy.pth')).toMatch(/legacy torch\.save format/);
    expect(await refused('hostile.pth')).toMatch(/names posix\.system/);
    expect(existsSync(path.join(path.dirname(checkpoint), 'pwned'))).toBe(false);
    expect(existsSync(path.join(dir, 'no'))).toBe(false);
  });

  it('npm start path: downloads a missing model (hash-checked), converts it, and the service loads it', async () => {
    const body = readFileSync(checkpoint);
    const name = `/models/efficientnet_b0_test-${sha256(checkpoint).slice(0, 8)}.pth`;
    const server = await startFileServer({ [name]: { kind: 'file', body, chunks: 4 } });
    const out = path.join(dir, 'start', 'efficientnet_b0.onnx');
    const messages: string[] = [];
    try {
      const did = await ensureModel(out, {
        log: { info: (m) => messages.push(m) },
        url: server.url(name),
        progress: undefined,
      });
      expect(did).toBe(true);
    } finally {
      await server.close();
    }
    expect(messages[0]).toMatch(/is missing: downloading/);
    expect(messages[1]).toMatch(/Wrote .*efficientnet_b0\.onnx \(16\.0 MB, weights custom, sha256 [0-9a-f]{64}\)/);
    expect(sha256(out)).toBe(sha256(ourOnnx)); // the same weights give the same file, whatever the way in
    expect(json(out.replace(/onnx$/, 'json'))).toMatchObject({ source: server.url(name) });
    expect(readdirSync(path.dirname(out)).sort()).toEqual(['efficientnet_b0.json', 'efficientnet_b0.onnx']);
    const model = await loadModel(out, { threads: 1 });
    const [vector] = await model.run([tensors[0].slice()]);
    expect(dot(vector, (await embed(models[0]))[0])).toBeGreaterThanOrEqual(0.99999);
    await model.close();
  });
});
