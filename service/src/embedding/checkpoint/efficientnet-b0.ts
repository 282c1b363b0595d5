// torchvision's EfficientNet-B0 (torchvision/models/efficientnet.py, width = depth = 1.0) rebuilt as an
// ONNX graph from its state_dict: what models/export.py gets from torch.onnx.export, with the classifier
// replaced by identity. Batch norm (eps 1e-5, nn.BatchNorm2d's default, which B0 uses) is folded into
// the convolutions, as torch's exporter does in eval mode; SiLU is Sigmoid + Mul, as torch exports it.
import { CheckpointError } from './errors.js';
import { encodeModel, type OnnxAttribute, type OnnxNode, type OnnxTensor } from './onnx-writer.js';
import type { StateDict, Tensor } from './state-dict.js';

/** _efficientnet_conf("efficientnet_b0"): expand ratio, kernel, stride, input, output channels, layers. */
const STAGES = [
  [1, 3, 1, 32, 16, 1],
  [6, 3, 2, 16, 24, 2],
  [6, 5, 2, 24, 40, 2],
  [6, 3, 2, 40, 80, 3],
  [6, 5, 1, 80, 112, 3],
  [6, 5, 2, 112, 192, 4],
  [6, 3, 1, 192, 320, 1],
] as const;
const STEM = 32;
const HEAD = 1280;
const CLASSES = 1000;
const BN_EPS = 1e-5;
export const EMBEDDING_DIM = HEAD;
export const INPUT_NAME = 'input';
export const OUTPUT_NAME = 'embedding';
export const INPUT_SIDE = 224;

/** Conv2dNormActivation at `path`: conv `path.0` (no bias), BatchNorm2d `path.1`, then SiLU or nothing. */
interface ConvLayer {
  kind: 'conv';
  path: string;
  input: number;
  output: number;
  kernel: number;
  stride: number;
  groups: number;
  silu: boolean;
}

/** SqueezeExcitation at `path`: avgpool, fc1 (1×1 conv), SiLU, fc2 (1×1 conv), Sigmoid, scale. */
interface SqueezeLayer {
  kind: 'se';
  path: string;
  channels: number;
  squeeze: number;
}

interface Block {
  residual: boolean;
  layers: (ConvLayer | SqueezeLayer)[];
}

const conv = (path: string, input: number, output: number, kernel: number, stride = 1, groups = 1, silu = true) =>
  ({ kind: 'conv', path, input, output, kernel, stride, groups, silu }) satisfies ConvLayer;

/** The network as torchvision builds it: features.0 (stem), features.1-7 (MBConv stages), features.8. */
function plan(): { stem: ConvLayer; blocks: Block[]; head: ConvLayer } {
  const blocks: Block[] = [];
  STAGES.forEach(([ratio, kernel, stride, stageInput, output, layers], stage) => {
    for (let i = 0; i < layers; i++) {
      const input = i === 0 ? stageInput : output;
      const step = i === 0 ? stride : 1;
      const expanded = input * ratio; // every B0 width is already a multiple of 8 (_make_divisible)
      const path = `features.${stage + 1}.${i}.block`;
      const parts: (ConvLayer | SqueezeLayer)[] = [];
      if (expanded !== input) parts.push(conv(`${path}.${parts.length}`, input, expanded, 1));
      parts.push(conv(`${path}.${parts.length}`, expanded, expanded, kernel, step, expanded));
      parts.push({ kind: 'se', path: `${path}.${parts.length}`, channels: expanded, squeeze: Math.max(1, input >> 2) });
      parts.push(conv(`${path}.${parts.length}`, expanded, output, 1, 1, 1, false));
      blocks.push({ residual: step === 1 && input === output, layers: parts });
    }
  });
  return { stem: conv('features.0', 3, STEM, 3, 2), blocks, head: conv('features.8', STAGES[6][4], HEAD, 1) };
}

const PLAN = plan();
const allLayers = () => [PLAN.stem, ...PLAN.blocks.flatMap((block) => block.layers), PLAN.head];

/** Every float32 tensor the network needs, with its shape (the state_dict of efficientnet_b0()). */
function requiredShapes(): Map<string, number[]> {
  const shapes = new Map<string, number[]>();
  for (const layer of allLayers()) {
    if (layer.kind === 'conv') {
      shapes.set(`${layer.path}.0.weight`, [layer.output, layer.input / layer.groups, layer.kernel, layer.kernel]);
      for (const key of ['weight', 'bias', 'running_mean', 'running_var'])
        shapes.set(`${layer.path}.1.${key}`, [layer.output]);
    } else {
      shapes.set(`${layer.path}.fc1.weight`, [layer.squeeze, layer.channels, 1, 1]);
      shapes.set(`${layer.path}.fc1.bias`, [layer.squeeze]);
      shapes.set(`${layer.path}.fc2.weight`, [layer.channels, layer.squeeze, 1, 1]);
      shapes.set(`${layer.path}.fc2.bias`, [layer.channels]);
    }
  }
  return shapes;
}

const REQUIRED = requiredShapes();
/** Present in torchvision's checkpoint but not part of the embedding: ignored when their shape is right. */
const OPTIONAL = new Map<string, number[]>([
  ['classifier.1.weight', [CLASSES, HEAD]],
  ['classifier.1.bias', [CLASSES]],
]);

/** Checks that the state_dict is exactly an EfficientNet-B0 one; the error lists what is not. */
export function checkStateDict(weights: StateDict, what: string): void {
  const missing = [...REQUIRED.keys()].filter((key) => !weights.has(key));
  const unexpected: string[] = [];
  const wrong: string[] = [];
  const notFinite: string[] = [];
  const same = (a: number[], b: number[]) => a.length === b.length && a.every((size, i) => size === b[i]);
  for (const [key, tensor] of weights) {
    // BatchNorm2d also saves an int64 step counter (num_batches_tracked), which eval mode never reads.
    const counter =
      key.endsWith('.num_batches_tracked') && REQUIRED.has(key.replace(/num_batches_tracked$/, 'running_mean'));
    const expected = counter ? [] : (REQUIRED.get(key) ?? OPTIONAL.get(key));
    if (!expected) unexpected.push(key);
    else if (!same(tensor.shape, expected) || tensor.dtype !== (counter ? 'int64' : 'float32'))
      wrong.push(`${key} is ${tensor.dtype} [${tensor.shape.join(', ')}], expected [${expected.join(', ')}]`);
    else if (tensor.dtype === 'float32' && !tensor.data.every(Number.isFinite)) notFinite.push(key);
  }
  if (missing.length + unexpected.length + wrong.length + notFinite.length === 0) return;
  const list = (label: string, items: string[]) =>
    items.length === 0
      ? []
      : [`${label} (${items.length}): ${items.slice(0, 4).join('; ')}${items.length > 4 ? '; …' : ''}`];
  const hint = [...weights.keys()].some((key) => key.startsWith('module.'))
    ? ' Its keys start with "module." (saved from DataParallel): save model.module.state_dict() instead.'
    : '';
  throw new CheckpointError(
    `${what} is not a torchvision EfficientNet-B0 state_dict (torchvision.models.efficientnet_b0().state_dict()): ` +
      `${[
        ...list('missing', missing),
        ...list('unexpected', unexpected),
        ...list('wrong shape', wrong),
        ...list('NaN or infinite values', notFinite),
      ].join('. ')}.` +
      hint,
  );
}

function float(weights: StateDict, key: string): Float32Array {
  const tensor = weights.get(key) as Extract<Tensor, { dtype: 'float32' }>;
  return tensor.data;
}

/** Conv without bias followed by BatchNorm2d → one conv with bias: w·γ/√(σ²+ε), β − μ·γ/√(σ²+ε). */
function foldBatchNorm(weights: StateDict, layer: ConvLayer): { weight: Float32Array; bias: Float32Array } {
  const kernel = float(weights, `${layer.path}.0.weight`);
  const bn = (key: string) => float(weights, `${layer.path}.1.${key}`);
  const [gamma, beta, mean, variance] = [bn('weight'), bn('bias'), bn('running_mean'), bn('running_var')];
  const weight = new Float32Array(kernel.length);
  const bias = new Float32Array(layer.output);
  const per = kernel.length / layer.output;
  for (let o = 0; o < layer.output; o++) {
    if (!(variance[o] >= 0)) throw new CheckpointError(`${layer.path}.1.running_var has a negative or NaN value.`);
    const scale = gamma[o] / Math.sqrt(variance[o] + BN_EPS);
    for (let i = o * per; i < (o + 1) * per; i++) weight[i] = kernel[i] * scale;
    bias[o] = beta[o] - mean[o] * scale;
  }
  return { weight, bias };
}

/** Collects nodes and initializers; each method returns the name of the tensor it produced. */
class GraphBuilder {
  readonly nodes: OnnxNode[] = [];
  readonly initializers: OnnxTensor[] = [];

  constructor(private readonly weights: StateDict) {}

  private node(opType: string, inputs: string[], output: string, attributes: OnnxAttribute[] = []) {
    this.nodes.push({ opType, name: output, inputs, outputs: [output], attributes });
    return output;
  }

  private initializer(name: string, dims: number[], values: Float32Array): string {
    this.initializers.push({ name, dims, values });
    return name;
  }

  private conv2d(x: string, name: string, weight: Float32Array, bias: Float32Array, layer: ConvLayer): string {
    const { kernel, stride, groups } = layer;
    const pad = (kernel - 1) >> 1;
    const w = this.initializer(`${name}.weight`, [layer.output, layer.input / groups, kernel, kernel], weight);
    const b = this.initializer(`${name}.bias`, [layer.output], bias);
    return this.node('Conv', [x, w, b], `${name}/Conv`, [
      { name: 'dilations', ints: [1, 1] },
      { name: 'group', int: groups },
      { name: 'kernel_shape', ints: [kernel, kernel] },
      { name: 'pads', ints: [pad, pad, pad, pad] },
      { name: 'strides', ints: [stride, stride] },
    ]);
  }

  private silu(x: string, name: string): string {
    return this.node('Mul', [x, this.node('Sigmoid', [x], `${name}/Sigmoid`)], `${name}/Mul`);
  }

  convBnAct(x: string, layer: ConvLayer): string {
    const { weight, bias } = foldBatchNorm(this.weights, layer);
    const y = this.conv2d(x, layer.path, weight, bias, layer);
    return layer.silu ? this.silu(y, layer.path) : y;
  }

  squeezeExcite(x: string, layer: SqueezeLayer): string {
    const { path, channels, squeeze } = layer;
    const fc = (input: string, name: 'fc1' | 'fc2', from: number, to: number) =>
      this.conv2d(
        input,
        `${path}.${name}`,
        float(this.weights, `${path}.${name}.weight`),
        float(this.weights, `${path}.${name}.bias`),
        conv(`${path}.${name}`, from, to, 1),
      );
    const pooled = this.node('GlobalAveragePool', [x], `${path}/GlobalAveragePool`);
    const hidden = this.silu(fc(pooled, 'fc1', channels, squeeze), `${path}.fc1`);
    const scale = this.node('Sigmoid', [fc(hidden, 'fc2', squeeze, channels)], `${path}/Sigmoid`);
    return this.node('Mul', [scale, x], `${path}/Mul`);
  }

  add(a: string, b: string, name: string): string {
    return this.node('Add', [a, b], name);
  }

  pool(x: string): string {
    const pooled = this.node('GlobalAveragePool', [x], 'avgpool/GlobalAveragePool');
    return this.node('Flatten', [pooled], OUTPUT_NAME, [{ name: 'axis', int: 1 }]);
  }
}

export interface BuildOptions {
  /** ONNX metadata_props (provenance: weights, source, checkpoint sha256). */
  metadata: Record<string, string>;
}

/** The serialized ONNX model (opset 13, dynamic batch axis `N`) for a checked EfficientNet-B0 state_dict. */
export function buildOnnx(weights: StateDict, what: string, options: BuildOptions): Uint8Array {
  checkStateDict(weights, what);
  const graph = new GraphBuilder(weights);
  let x = graph.convBnAct(INPUT_NAME, PLAN.stem);
  PLAN.blocks.forEach((block, index) => {
    const input = x;
    for (const layer of block.layers)
      x = layer.kind === 'conv' ? graph.convBnAct(x, layer) : graph.squeezeExcite(x, layer);
    // StochasticDepth is the identity in eval mode, so a residual block is block(x) + x.
    if (block.residual) x = graph.add(x, input, `block${index}/Add`);
  });
  graph.pool(graph.convBnAct(x, PLAN.head));

  return encodeModel({
    irVersion: 7,
    opset: 13,
    producerName: 'erp-image-search',
    producerVersion: 'checkpoint converter 1',
    graphName: 'efficientnet_b0',
    nodes: graph.nodes,
    initializers: graph.initializers,
    inputs: [{ name: INPUT_NAME, dims: ['N', 3, INPUT_SIDE, INPUT_SIDE] }],
    outputs: [{ name: OUTPUT_NAME, dims: ['N', EMBEDDING_DIM] }],
    metadata: options.metadata,
  });
}

/** Seeded random weights with torchvision's initialisation (kaiming-normal fan-out convs, batch norm at
 * identity): the real architecture and compute for machines without the checkpoint; meaningless vectors. */
export function randomStateDict(seed: number): StateDict {
  let state = seed >>> 0;
  const uniform = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (((t ^ (t >>> 14)) >>> 0) + 0.5) / 4294967296;
  };
  const normal = () => Math.sqrt(-2 * Math.log(uniform())) * Math.cos(2 * Math.PI * uniform());
  const weights: StateDict = new Map();
  for (const [key, shape] of REQUIRED) {
    const data = new Float32Array(shape.reduce((a, b) => a * b, 1));
    if (shape.length === 4) {
      const std = Math.sqrt(2 / (shape[0] * shape[2] * shape[3]));
      for (let i = 0; i < data.length; i++) data[i] = normal() * std;
    } else if (/\.1\.(weight|running_var)$/.test(key)) {
      data.fill(1);
    }
    weights.set(key, { dtype: 'float32', shape, data });
  }
  return weights;
}
