import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadModel, ModelError } from '../../../service/src/embedding/model.js';
import { ModelRegistry } from '../../../service/src/embedding/registry.js';
import { decodeForModel, preprocess } from '../../../service/src/images/preprocess.js';
import { writeTestModel } from '../../support/onnx-model.js';
import * as images from '../../support/images.js';

const dir = mkdtempSync(path.join(tmpdir(), 'model-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const norm = (v: Float32Array) => Math.sqrt(v.reduce((sum, x) => sum + x * x, 0));
const cosine = (a: Float32Array, b: Float32Array) => a.reduce((sum, x, i) => sum + x * b[i], 0) / (norm(a) * norm(b));

describe('loadModel', () => {
  it('loads a real ONNX model and returns unit-length vectors of the sidecar width', async () => {
    const { onnxPath } = writeTestModel({ dir, name: 'ok', dim: 576 });
    const model = await loadModel(onnxPath, { threads: 1 });
    expect(model.manifest).toMatchObject({
      name: 'ok',
      dim: 576,
      input: 'input',
      output: 'embedding',
      resize: 256,
      crop: 224,
    });
    const tensor = new Float32Array(3 * 224 * 224).map((_, i) => Math.sin(i));
    const [vector] = await model.run([tensor]);
    expect(vector).toHaveLength(576);
    expect(norm(vector)).toBeCloseTo(1, 5);
    await model.close();
  });

  it('gives the same vectors for decoded pixels (normalised in a worker, alone or batched) as tensors', async () => {
    const { onnxPath } = writeTestModel({ dir, name: 'pixels', dim: 64 });
    const model = await loadModel(onnxPath, { threads: 1, workers: 2 });
    const limits = { maxPixels: 1e8 };
    const photos = await Promise.all([1, 2, 3].map((seed) => images.jpeg(400, 300, seed)));
    const decoded = await Promise.all(photos.map((bytes) => decodeForModel(bytes, model.manifest, limits)));
    const tensors = await Promise.all(photos.map((bytes) => preprocess(bytes, model.manifest, limits)));
    const fromTensors = await model.run(tensors.map((t) => t.slice()));
    // Alone (normalised in the worker, into the buffer it reuses: run several through each worker) and batched.
    const alone = await Promise.all([...decoded, ...decoded].map((image) => model.run([image])));
    const batched = await model.run(decoded);
    for (let i = 0; i < photos.length; i++) {
      expect(cosine(alone[i][0], fromTensors[i])).toBeGreaterThan(0.999999);
      expect(cosine(alone[i + photos.length][0], fromTensors[i])).toBeGreaterThan(0.999999);
      expect(cosine(batched[i], fromTensors[i])).toBeGreaterThan(0.999999);
    }
    // Different photos stay different: the comparison above could not pass on a constant output.
    expect(cosine(fromTensors[0], fromTensors[1])).toBeLessThan(0.9999);
    await model.close();
  });

  it("identifies the model by its file's sha256, and refuses a sidecar that records another file's", async () => {
    const { onnxPath } = writeTestModel({ dir, name: 'hashed', dim: 64 });
    const sha256 = createHash('sha256').update(readFileSync(onnxPath)).digest('hex');
    const model = await loadModel(onnxPath, { threads: 1 });
    expect(model.manifest.sha256).toBe(sha256); // the sidecar records none: computed
    await model.close();
    // The same name and width with other weights, and its sidecar carried over from the first file.
    const other = writeTestModel({ dir, name: 'hashed_other', dim: 64, seed: 99, sidecar: { sha256 } });
    const error = (await loadModel(other.onnxPath, { threads: 1 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ModelError);
    expect(error.message).toMatch(new RegExp(`records sha256 ${sha256} but the file's is [0-9a-f]{64}`));
    const right = createHash('sha256').update(readFileSync(other.onnxPath)).digest('hex');
    const ok = writeTestModel({ dir, name: 'hashed_other', dim: 64, seed: 99, sidecar: { sha256: right } });
    const loaded = await loadModel(ok.onnxPath, { threads: 1 });
    expect(loaded.manifest.sha256).toBe(right);
    await loaded.close();
  });

  const mismatches: Array<[string, Parameters<typeof writeTestModel>[0], RegExp]> = [
    [
      'input name',
      { dir, name: 'bad_input', sidecar: { input: 'pixels' } },
      /sidecar names input "pixels".*\["input"\]/,
    ],
    [
      'output name',
      { dir, name: 'bad_output', sidecar: { output: 'features' } },
      /sidecar names output "features".*\["embedding"\]/,
    ],
    [
      'output width',
      { dir, name: 'bad_dim', dim: 576, sidecar: { dim: 1280 } },
      /sidecar says 1280-d but the model outputs shape \[1, 576\]/,
    ],
  ];
  for (const [what, options, message] of mismatches) {
    it(`refuses a sidecar whose ${what} does not match the model, naming the file`, async () => {
      const { onnxPath } = writeTestModel(options);
      const error = await loadModel(onnxPath, { threads: 1 }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(ModelError);
      expect((error as Error).message).toContain(onnxPath);
      expect((error as Error).message).toMatch(message);
    });
  }

  it('refuses a missing sidecar with its path', async () => {
    const { onnxPath, sidecarPath } = writeTestModel({ dir, name: 'no_sidecar' });
    rmSync(sidecarPath);
    await expect(loadModel(onnxPath, { threads: 1 })).rejects.toThrow(
      `Cannot read the model sidecar ${sidecarPath}: it does not exist`,
    );
  });

  it('lists every problem of an invalid sidecar', async () => {
    const { onnxPath, sidecarPath } = writeTestModel({ dir, name: 'invalid' });
    writeFileSync(
      sidecarPath,
      JSON.stringify({ name: 'invalid', dim: -1, input: 'input', mean: [1, 2], std: [0.2, 0.2, 0] }),
    );
    const error = (await loadModel(onnxPath, { threads: 1 }).catch((e: unknown) => e)) as Error;
    expect(error).toBeInstanceOf(ModelError);
    for (const field of ['"output"', '"dim"', '"resize"', '"crop"', '"mean"', '"std"'])
      expect(error.message).toContain(field);
  });

  it('refuses a file that is not an ONNX model', async () => {
    const { onnxPath } = writeTestModel({ dir, name: 'garbage' });
    writeFileSync(onnxPath, 'not a model');
    await expect(loadModel(onnxPath, { threads: 1 })).rejects.toThrow(`Cannot load the ONNX model ${onnxPath}`);
  });
});

describe('Embedder through the registry', () => {
  const { onnxPath } = writeTestModel({ dir, name: 'main', dim: 1280 });
  writeTestModel({ dir, name: 'other', dim: 576, seed: 3 });
  const registry = new ModelRegistry(onnxPath, { threads: 1, concurrency: 2, queueMax: 8, maxPixels: 50_000_000 });
  afterAll(() => registry.close());

  it('embeds bytes into a unit vector, deterministically', async () => {
    const embedder = await registry.default();
    const bytes = await images.jpeg(640, 480, 1);
    const [a, b] = await Promise.all([embedder.embed(bytes), embedder.embed(bytes)]);
    expect(a).toHaveLength(1280);
    expect(norm(a)).toBeCloseTo(1, 5);
    expect(Array.from(a)).toEqual(Array.from(b));
  });

  it('scores a re-encoded copy of a picture above a different picture', async () => {
    const embedder = await registry.default();
    const original = await embedder.embed(await images.jpeg(640, 480, 1));
    const copy = await embedder.embed(await images.photo(640, 480, 1).resize(500).webp({ quality: 70 }).toBuffer());
    const different = await embedder.embed(await images.jpeg(640, 480, 8));
    expect(cosine(original, copy)).toBeGreaterThan(0.99);
    expect(cosine(original, copy)).toBeGreaterThan(cosine(original, different) + 0.01);
  });

  it('gives the same vectors in a batch as one by one', async () => {
    const embedder = await registry.default();
    const inputs = await Promise.all([1, 2, 3].map((seed) => images.jpeg(320, 240, seed)));
    const batch = await embedder.embedBatch(inputs);
    for (const [i, bytes] of inputs.entries()) {
      const single = await embedder.embed(bytes);
      expect(cosine(batch[i], single)).toBeGreaterThan(0.99999);
    }
  });

  it('loads a sibling model by sidecar name, once', async () => {
    const other = await registry.byName('other');
    expect(other.manifest.dim).toBe(576);
    expect(await registry.byName('other')).toBe(other);
    await expect(registry.byName('missing')).rejects.toThrow(/missing\.json/);
  });
});
