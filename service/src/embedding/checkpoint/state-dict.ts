// Reads a torch.save'd state_dict (the zip format of torch >= 1.6): `<dir>/data.pkl` describes an
// OrderedDict of tensors, each a view (offset, sizes, strides) of a raw little-endian storage in
// `<dir>/data/<key>`. Only float32 tensors (and the int64 batch-norm counters) are accepted.
import { CheckpointError } from './errors.js';
import { type PickleGlobal, unpickle } from './pickle.js';
import { ZipArchive } from './zip.js';

export type Tensor =
  { dtype: 'float32'; shape: number[]; data: Float32Array } | { dtype: 'int64'; shape: number[]; data: BigInt64Array };

export type StateDict = Map<string, Tensor>;

const STORAGES = { FloatStorage: 'float32', LongStorage: 'int64' } as const;
type StorageType = keyof typeof STORAGES;
const ITEM_SIZE = { float32: 4, int64: 8 } as const;

interface StorageRef {
  readonly kind: 'storage';
  readonly dtype: 'float32' | 'int64';
  readonly key: string;
  readonly numel: number;
}

const isIntTuple = (value: unknown): value is number[] =>
  Array.isArray(value) && value.every((item) => Number.isSafeInteger(item) && (item as number) >= 0);

export function readStateDict(bytes: Buffer, what: string): StateDict {
  const fail = (reason: string) => new CheckpointError(`${what}: ${reason}`);
  if (bytes.length >= 8 && bytes.readUInt16LE(0) === 0x0280 && bytes.indexOf('PK', 0) !== 0) {
    throw fail(
      'it is in the legacy torch.save format (torch < 1.6). Load it with torch and save it again ' +
        '(torch.save(torch.load(FILE), NEW_FILE)) to get the zip format this converter reads.',
    );
  }
  const zip = new ZipArchive(bytes, what);
  const pickles = zip.names().filter((name) => /^[^/]+\/data\.pkl$/.test(name));
  if (pickles.length !== 1) throw fail('it is not a torch.save file (no single <name>/data.pkl inside).');
  const dir = pickles[0].slice(0, -'data.pkl'.length);
  if (zip.has(`${dir}byteorder`) && zip.read(`${dir}byteorder`).toString('latin1') !== 'little') {
    throw fail('it was saved on a big-endian machine; save it again on a little-endian one.');
  }

  const storages = new Map<string, DataView>();
  const storage = (ref: StorageRef): DataView => {
    let view = storages.get(ref.key);
    if (!view) {
      const name = `${dir}data/${ref.key}`;
      if (!/^\d+$/.test(ref.key) || !zip.has(name)) throw fail(`tensor data ${ref.key} is missing from the archive.`);
      const data = zip.read(name);
      if (data.length !== ref.numel * ITEM_SIZE[ref.dtype]) {
        throw fail(`tensor data ${ref.key} has ${data.length} bytes, not ${ref.numel} ${ref.dtype} values.`);
      }
      view = new DataView(data.buffer, data.byteOffset, data.byteLength);
      storages.set(ref.key, view);
    }
    return view;
  };

  const rebuildTensor = (args: unknown[]): Tensor => {
    // _rebuild_tensor_v2(storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
    const [ref, offset, shape, stride] = args;
    if (args.length < 6 || args.length > 7 || !isStorageRef(ref) || !Number.isSafeInteger(offset)) {
      throw fail('a tensor is described in a way this converter does not know.');
    }
    if (!isIntTuple(shape) || !isIntTuple(stride) || shape.length !== stride.length) {
      throw fail('a tensor has an invalid shape or stride.');
    }
    const count = shape.reduce((product, size) => product * size, 1);
    // A saved parameter never has more elements than its storage (only expanded views do, never saved).
    if (count > ref.numel) throw fail('a tensor has more elements than its storage.');
    const last = shape.reduce((sum, size, i) => sum + (size - 1) * stride[i], offset as number);
    if (count > 0 && ((offset as number) < 0 || last >= ref.numel)) throw fail('a tensor reaches past its storage.');
    const view = storage(ref);
    const data = ref.dtype === 'float32' ? new Float32Array(count) : new BigInt64Array(count);
    // Walk the view in row-major order (state_dict tensors are contiguous, but a view is legal too).
    const index = new Array<number>(shape.length).fill(0);
    let source = offset as number;
    for (let i = 0; i < count; i++) {
      if (data instanceof Float32Array) data[i] = view.getFloat32(source * 4, true);
      else data[i] = view.getBigInt64(source * 8, true);
      for (let axis = shape.length - 1; axis >= 0; axis--) {
        index[axis]++;
        source += stride[axis];
        if (index[axis] < shape[axis]) break;
        source -= stride[axis] * shape[axis];
        index[axis] = 0;
      }
    }
    return { dtype: ref.dtype, shape: [...shape], data } as Tensor;
  };

  const allowed: Record<string, PickleGlobal> = {
    'collections.OrderedDict': {
      qualifiedName: 'collections.OrderedDict',
      call: (args) => {
        if (args.length !== 0) throw fail('an OrderedDict is built with arguments.');
        return new Map();
      },
      // torch.save keeps the module versions in state_dict._metadata: not needed for the weights.
      build: () => undefined,
    },
    'torch._utils._rebuild_tensor_v2': { qualifiedName: 'torch._utils._rebuild_tensor_v2', call: rebuildTensor },
    // _rebuild_parameter(data, requires_grad, backward_hooks): a dict of nn.Parameter instead of tensors
    'torch._utils._rebuild_parameter': {
      qualifiedName: 'torch._utils._rebuild_parameter',
      call: ([data, ...rest]) => {
        if (!isTensor(data) || rest.length !== 2)
          throw fail('a parameter is described in a way this converter does not know.');
        return data;
      },
    },
    ...Object.fromEntries(Object.keys(STORAGES).map((type) => [`torch.${type}`, { qualifiedName: `torch.${type}` }])),
  };

  const root = unpickle(
    zip.read(`${dir}data.pkl`),
    {
      resolve(module, name) {
        const found = allowed[`${module}.${name}`];
        if (found) return found;
        if (module === 'torch' && name.endsWith('Storage')) {
          throw fail(
            `it holds torch.${name} tensors; only float32 weights are converted. Save a float32 copy: ` +
              'torch.save({k: v.float() if v.is_floating_point() else v for k, v in sd.items()}, NEW_FILE).',
          );
        }
        throw fail(
          `its pickle names ${module}.${name}, which a plain state_dict does not contain; refused (a pickle can ` +
            'run any global it names). Save the weights alone: torch.save(model.state_dict(), FILE).',
        );
      },
      persistentLoad(pid) {
        // ('storage', storage type, key, location, numel)
        if (!Array.isArray(pid) || pid.length !== 5 || pid[0] !== 'storage') {
          throw fail('it refers to data that is not a tensor storage.');
        }
        const [, type, key, , numel] = pid as [string, PickleGlobal | undefined, unknown, unknown, unknown];
        const dtype = STORAGES[type?.qualifiedName?.replace(/^torch\./, '') as StorageType];
        if (
          !dtype ||
          typeof key !== 'string' ||
          typeof numel !== 'number' ||
          !Number.isSafeInteger(numel) ||
          numel < 0
        ) {
          throw fail('a tensor storage reference is malformed.');
        }
        return { kind: 'storage', dtype, key, numel } satisfies StorageRef;
      },
    },
    what,
  );

  if (!(root instanceof Map)) throw fail('it does not hold a dict of tensors (a state_dict).');
  const entries = [...(root as Map<unknown, unknown>)];
  const nested = entries.find(([, value]) => value instanceof Map)?.[0];
  if (nested !== undefined) {
    throw fail(
      `it holds a dict under ${JSON.stringify(nested)}, not only tensors: a training checkpoint? Save the weights ` +
        `alone: torch.save(checkpoint[${JSON.stringify(nested)}], FILE).`,
    );
  }
  const result: StateDict = new Map();
  for (const [key, value] of entries) {
    if (typeof key !== 'string' || !isTensor(value)) throw fail(`${JSON.stringify(key)} is not a tensor.`);
    result.set(key, value);
  }
  return result;
}

function isStorageRef(value: unknown): value is StorageRef {
  return typeof value === 'object' && value !== null && (value as StorageRef).kind === 'storage';
}

function isTensor(value: unknown): value is Tensor {
  return (
    typeof value === 'object' &&
    value !== null &&
    'dtype' in value &&
    (value.dtype === 'float32' || value.dtype === 'int64')
  );
}
