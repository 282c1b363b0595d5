// Serialises an ONNX model: the protobuf wire format of the few onnx.proto messages a plain CNN graph
// needs (model, graph, node, int/ints attribute, float tensor, tensor value info, string pair). Written
// by hand rather than with protobufjs so the service has no runtime dependency for it (protobufjs 6
// ships a 20 MB CLI); tests decode the result with onnx-proto and onnxruntime loads it.

/** A non-negative integer as a protobuf varint. */
function varint(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new RangeError(`cannot encode ${value} as a varint`);
  const bytes: number[] = [];
  while (value > 0x7f) {
    bytes.push((value % 0x80) | 0x80);
    value = Math.floor(value / 0x80);
  }
  bytes.push(value);
  return Uint8Array.from(bytes);
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let at = 0;
  for (const part of parts) {
    out.set(part, at);
    at += part.length;
  }
  return out;
}

const utf8 = new TextEncoder();
const int = (field: number, value: number) => concat([varint(field * 8), varint(value)]);
const bytes = (field: number, data: Uint8Array) => concat([varint(field * 8 + 2), varint(data.length), data]);
const text = (field: number, value: string) => bytes(field, utf8.encode(value));
const message = (field: number, parts: Uint8Array[]) => bytes(field, concat(parts));

// onnx.proto enums
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTRIBUTE_INT = 2;
const ATTRIBUTE_INTS = 7;

export type OnnxAttribute = { name: string; int: number } | { name: string; ints: number[] };

export interface OnnxNode {
  opType: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attributes?: OnnxAttribute[];
}

export interface OnnxTensor {
  name: string;
  dims: number[];
  values: Float32Array;
}

/** A float32 graph input or output; a string dimension is symbolic (a dynamic axis such as the batch). */
export interface OnnxValue {
  name: string;
  dims: (number | string)[];
}

export interface OnnxModel {
  irVersion: number;
  opset: number;
  producerName: string;
  producerVersion: string;
  graphName: string;
  nodes: OnnxNode[];
  initializers: OnnxTensor[];
  inputs: OnnxValue[];
  outputs: OnnxValue[];
  metadata: Record<string, string>;
}

function attribute(value: OnnxAttribute): Uint8Array {
  // AttributeProto: name 1, i 3, ints 8 (repeated, unpacked as proto2 writes it), type 20
  return 'int' in value
    ? concat([text(1, value.name), int(3, value.int), int(20, ATTRIBUTE_INT)])
    : concat([text(1, value.name), ...value.ints.map((v) => int(8, v)), int(20, ATTRIBUTE_INTS)]);
}

function node(value: OnnxNode): Uint8Array {
  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5
  return concat([
    ...value.inputs.map((name) => text(1, name)),
    ...value.outputs.map((name) => text(2, name)),
    text(3, value.name),
    text(4, value.opType),
    ...(value.attributes ?? []).map((a) => message(5, [attribute(a)])),
  ]);
}

function tensor(value: OnnxTensor): Uint8Array {
  // TensorProto: dims 1, data_type 2, name 8, raw_data 9 (little-endian, whatever the host's byte order)
  const raw = new Uint8Array(value.values.length * 4);
  const view = new DataView(raw.buffer);
  value.values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return concat([...value.dims.map((d) => int(1, d)), int(2, FLOAT), text(8, value.name), bytes(9, raw)]);
}

function valueInfo(value: OnnxValue): Uint8Array {
  // ValueInfoProto { name 1, type 2 } → TypeProto { tensor_type 1 } → Tensor { elem_type 1, shape 2 }
  // → TensorShapeProto { dim 1 } → Dimension { dim_value 1 | dim_param 2 }
  const dims = value.dims.map((d) => message(1, [typeof d === 'number' ? int(1, d) : text(2, d)]));
  return concat([text(1, value.name), message(2, [message(1, [int(1, FLOAT), message(2, dims)])])]);
}

export function encodeModel(model: OnnxModel): Uint8Array {
  // GraphProto: node 1, name 2, initializer 5, input 11, output 12
  const graph = [
    ...model.nodes.map((n) => message(1, [node(n)])),
    text(2, model.graphName),
    ...model.initializers.map((t) => message(5, [tensor(t)])),
    ...model.inputs.map((v) => message(11, [valueInfo(v)])),
    ...model.outputs.map((v) => message(12, [valueInfo(v)])),
  ];
  // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8 { domain 1,
  // version 2 }, metadata_props 14 { key 1, value 2 }
  return concat([
    int(1, model.irVersion),
    text(2, model.producerName),
    text(3, model.producerVersion),
    message(7, graph),
    message(8, [text(1, ''), int(2, model.opset)]),
    ...Object.entries(model.metadata).map(([key, value]) => message(14, [text(1, key), text(2, value)])),
  ]);
}
