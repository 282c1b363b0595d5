// The EfficientNet-B0 graph builder and model writer without torch: seeded random weights go through the
// same check, graph and atomic write as a real checkpoint, and onnxruntime runs the result. (Parity
// with torch's own export is test/models/convert.test.ts.)
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import onnxProto from 'onnx-proto';
import { afterAll, describe, expect, it } from 'vitest';
import { convertCheckpoint, writeRandomModel } from '../../../../service/src/embedding/checkpoint/convert.js';
import { checkStateDict, randomStateDict } from '../../../../service/src/embedding/checkpoint/efficientnet-b0.js';
import { CheckpointError } from '../../../../service/src/embedding/checkpoint/errors.js';
import type { StateDict } from '../../../../service/src/embedding/checkpoint/state-dict.js';
import { loadModel } from '../../../../service/src/embedding/model.js';
import { EFFICIENTNET_B0_SIDECAR } from '../../../support/onnx-model.js';

const dir = mkdtempSync(path.join(tmpdir(), 'efficientnet-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const sha256 = (file: string) => createHash('sha256').update(readFileSync(file)).digest('hex');

describe('writeRandomModel', () => {
  it('writes a model onnxruntime runs (1280-d, any batch) and a sidecar with its provenance and hash', async () => {
    const out = path.join(dir, 'random', 'efficientnet_b0.onnx');
    const written = await writeRandomModel(out);
    expect(readdirSync(path.dirname(out)).sort()).toEqual(['efficientnet_b0.json', 'efficientnet_b0.onnx']);
    const sidecar = JSON.parse(readFileSync(written.sidecarPath, 'utf8'));
    expect(sidecar).toMatchObject({
      ...EFFICIENTNET_B0_SIDECAR,
      name: 'efficientnet_b0_random', // named by its weights: never the ImageNet model's collection
      weights: 'random(seed=0)',
      source: null,
      checkpoint_sha256: null,
      sha256: sha256(out),
    });
    const model = await loadModel(out, { threads: 1 });
    try {
      const inputs = [0.3, -0.7, 1.1].map((value) => new Float32Array(3 * 224 * 224).fill(value));
      const vectors = await model.run(inputs);
      expect(vectors.map((vector) => vector.length)).toEqual([1280, 1280, 1280]);
      expect(vectors.every((vector) => vector.every(Number.isFinite))).toBe(true);
    } finally {
      await model.close();
    }
  });

  it("encodes a graph protobufjs decodes as torch's export: the same operators, shapes and dynamic batch", async () => {
    const out = path.join(dir, 'decoded', 'efficientnet_b0.onnx');
    await writeRandomModel(out);
    const model = onnxProto.onnx.ModelProto.decode(readFileSync(out));
    expect(Number(model.irVersion)).toBe(7);
    expect(model.opsetImport.map((o) => [o.domain, Number(o.version)])).toEqual([['', 13]]);
    expect(Object.fromEntries(model.metadataProps.map((p) => [p.key, p.value]))).toEqual({ weights: 'random(seed=0)' });
    const graph = model.graph!;
    const [nodes, initializers] = [graph.node!, graph.initializer!];
    const counts: Record<string, number> = {};
    for (const node of nodes) counts[node.opType!] = (counts[node.opType!] ?? 0) + 1;
    expect(counts).toEqual({ Conv: 81, Sigmoid: 65, Mul: 65, GlobalAveragePool: 17, Add: 9, Flatten: 1 });
    const dims = (value: onnxProto.onnx.IValueInfoProto) =>
      value.type!.tensorType!.shape!.dim!.map((d) => d.dimParam || Number(d.dimValue));
    expect(graph.input!.map((v) => [v.name, dims(v)])).toEqual([['input', ['N', 3, 224, 224]]]);
    expect(graph.output!.map((v) => [v.name, dims(v)])).toEqual([['embedding', ['N', 1280]]]);
    // the first depthwise convolution: 32 groups of 3x3, stride 1, padding 1
    const depthwise = nodes.find((n) => n.name === 'features.1.0.block.0/Conv')!;
    const attribute = (name: string) => depthwise.attribute!.find((a) => a.name === name)!;
    expect(Number(attribute('group').i)).toBe(32);
    expect(attribute('kernel_shape').ints!.map(Number)).toEqual([3, 3]);
    expect(attribute('pads').ints!.map(Number)).toEqual([1, 1, 1, 1]);
    const weight = initializers.find((t) => t.name === depthwise.input![1])!;
    expect(weight.dims!.map(Number)).toEqual([32, 1, 3, 3]);
    expect(weight.rawData).toHaveLength(32 * 9 * 4);
    // torchvision's B0 has 5,288,548 parameters; less the classifier (1280 x 1000 + 1000), and less one per
    // batch-norm channel (its scale and shift fold into one conv bias), all the rest is in the graph.
    const batchNormChannels = [...randomStateDict(0)]
      .filter(([key, tensor]) => key.endsWith('.1.weight') && tensor.shape.length === 1)
      .reduce((sum, [, tensor]) => sum + tensor.shape[0], 0);
    const parameters = initializers.reduce((sum, t) => sum + t.dims!.map(Number).reduce((a, b) => a * b, 1), 0);
    expect(parameters).toBe(5_288_548 - 1_281_000 - batchNormChannels);
    expect(initializers).toHaveLength(2 * 81);
  });

  it('writes the same bytes for the same seed, and replaces an existing model whole', async () => {
    const out = path.join(dir, 'twice', 'efficientnet_b0.onnx');
    const first = await writeRandomModel(out, 3);
    const second = await writeRandomModel(out, 3);
    expect(second.sha256).toBe(first.sha256);
    const other = await writeRandomModel(out, 4);
    expect(other.sha256).not.toBe(first.sha256);
    expect(JSON.parse(readFileSync(other.sidecarPath, 'utf8')).sha256).toBe(sha256(out));
    expect(readdirSync(path.dirname(out)).sort()).toEqual(['efficientnet_b0.json', 'efficientnet_b0.onnx']);
  });

  it('leaves an existing model untouched when a conversion fails', async () => {
    const out = path.join(dir, 'kept', 'efficientnet_b0.onnx');
    const before = (await writeRandomModel(out)).sha256;
    const bad = path.join(dir, 'kept', 'bad.pth');
    writeFileSync(bad, 'not a checkpoint');
    await expect(convertCheckpoint(bad, out)).rejects.toThrow(CheckpointError);
    expect(sha256(out)).toBe(before);
    expect(readdirSync(path.dirname(out)).sort()).toEqual(['bad.pth', 'efficientnet_b0.json', 'efficientnet_b0.onnx']);
  });
});

describe('checkStateDict', () => {
  const problems = (edit: (weights: StateDict) => void) => {
    const weights = randomStateDict(1);
    edit(weights);
    try {
      checkStateDict(weights, 'edited.pth');
      return '';
    } catch (error) {
      expect(error).toBeInstanceOf(CheckpointError);
      return (error as Error).message;
    }
  };
  const counter = { dtype: 'int64' as const, shape: [], data: BigInt64Array.from([5n]) };

  it("accepts what torchvision's state_dict holds besides the network: batch-norm counters, the classifier", () => {
    expect(
      problems((weights) => {
        weights.set('features.0.1.num_batches_tracked', counter);
        weights.set('classifier.1.weight', { dtype: 'float32', shape: [1000, 1280], data: new Float32Array(1280000) });
        weights.set('classifier.1.bias', { dtype: 'float32', shape: [1000], data: new Float32Array(1000) });
      }),
    ).toBe('');
  });

  it('lists missing, unexpected, misshapen and non-finite tensors', () => {
    const message = problems((weights) => {
      weights.delete('features.8.1.running_var');
      weights.set('features.1.0.block.1.fc1.num_batches_tracked', counter); // SE convs have no batch norm
      weights.set('features.0.1.bias', { dtype: 'float32', shape: [16], data: new Float32Array(16) });
      weights.get('features.4.2.block.1.0.weight')!.data[7] = Number.NaN;
      weights.set('classifier.1.bias', { dtype: 'float32', shape: [10], data: new Float32Array(10) });
    });
    expect(message).toContain('missing (1): features.8.1.running_var');
    expect(message).toContain('unexpected (1): features.1.0.block.1.fc1.num_batches_tracked');
    expect(message).toContain('features.0.1.bias is float32 [16], expected [32]');
    expect(message).toContain('classifier.1.bias is float32 [10], expected [1000]');
    expect(message).toContain('NaN or infinite values (1): features.4.2.block.1.0.weight');
  });
});
