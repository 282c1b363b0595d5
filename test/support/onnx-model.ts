// Builds a small but real ONNX model with the production contract (input `input` [N,3,224,224] float32 →
// `embedding` [N,dim]), so tests run the real onnxruntime-node without downloading anything.
// Graph: AveragePool 28×28 → Flatten (192 features) → MatMul with a seeded random projection.
// Similar pictures give similar pooled colours, so similarity behaves sensibly.
import { mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import onnxProto from 'onnx-proto';

const { onnx } = onnxProto;

/** The sidecar contract of the production model, whichever way it is made (models/README.md). */
export const EFFICIENTNET_B0_SIDECAR = {
  name: 'efficientnet_b0',
  dim: 1280,
  input: 'input',
  output: 'embedding',
  resize: 256,
  crop: 224,
  mean: [0.485, 0.456, 0.406],
  std: [0.229, 0.224, 0.225],
};

export interface TestModelOptions {
  dir: string;
  name?: string;
  dim?: number;
  seed?: number;
  inputName?: string;
  outputName?: string;
  /** Sidecar overrides, to write deliberately wrong sidecars. */
  sidecar?: Record<string, unknown>;
}

export interface TestModel {
  onnxPath: string;
  sidecarPath: string;
  name: string;
  dim: number;
}

const POOLED = 3 * 8 * 8;

function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const FLOAT = onnx.TensorProto.DataType.FLOAT;

function valueInfo(name: string, dims: (number | string)[]) {
  return onnx.ValueInfoProto.create({
    name,
    type: {
      tensorType: {
        elemType: FLOAT,
        shape: { dim: dims.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })) },
      },
    },
  });
}

export function writeTestModel(options: TestModelOptions): TestModel {
  const name = options.name ?? 'test_model';
  const dim = options.dim ?? 1280;
  const inputName = options.inputName ?? 'input';
  const outputName = options.outputName ?? 'embedding';
  const random = mulberry32(options.seed ?? 7);
  const weights = new Float32Array(POOLED * dim);
  for (let i = 0; i < weights.length; i++) weights[i] = random() * 2 - 1;

  const graph = onnx.GraphProto.create({
    name,
    node: [
      onnx.NodeProto.create({
        opType: 'AveragePool',
        input: [inputName],
        output: ['pooled'],
        attribute: [
          { name: 'kernel_shape', type: onnx.AttributeProto.AttributeType.INTS, ints: [28, 28] },
          { name: 'strides', type: onnx.AttributeProto.AttributeType.INTS, ints: [28, 28] },
        ],
      }),
      onnx.NodeProto.create({
        opType: 'Flatten',
        input: ['pooled'],
        output: ['flat'],
        attribute: [{ name: 'axis', type: onnx.AttributeProto.AttributeType.INT, i: 1 }],
      }),
      onnx.NodeProto.create({ opType: 'MatMul', input: ['flat', 'projection'], output: [outputName] }),
    ],
    initializer: [
      onnx.TensorProto.create({
        name: 'projection',
        dataType: FLOAT,
        dims: [POOLED, dim],
        rawData: new Uint8Array(weights.buffer),
      }),
    ],
    input: [valueInfo(inputName, ['N', 3, 224, 224])],
    output: [valueInfo(outputName, ['N', dim])],
  });
  const model = onnx.ModelProto.create({
    irVersion: 8,
    producerName: 'erp-image-search tests',
    opsetImport: [{ domain: '', version: 13 }],
    graph,
  });

  mkdirSync(options.dir, { recursive: true });
  const onnxPath = path.join(options.dir, `${name}.onnx`);
  const sidecarPath = path.join(options.dir, `${name}.json`);
  writeFileSync(onnxPath, onnx.ModelProto.encode(model).finish());
  const sidecar = {
    name,
    dim,
    input: inputName,
    output: outputName,
    resize: 256,
    crop: 224,
    mean: [0.485, 0.456, 0.406],
    std: [0.229, 0.224, 0.225],
    ...options.sidecar,
  };
  writeFileSync(sidecarPath, `${JSON.stringify(sidecar, null, 2)}\n`);
  return { onnxPath, sidecarPath, name, dim };
}
