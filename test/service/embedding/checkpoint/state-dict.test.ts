// The torch.save reader: real files written by torch (committed fixtures, see test/fixtures/checkpoint/
// make.py) and archives built byte by byte for what torch never writes (hostile, truncated, damaged).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { CheckpointError } from '../../../../service/src/embedding/checkpoint/errors.js';
import { readStateDict } from '../../../../service/src/embedding/checkpoint/state-dict.js';
import { zipStored } from '../../../support/zip-writer.js';

const fixture = (name: string) => readFileSync(path.join('test/fixtures/checkpoint', name));

const failure = (bytes: Buffer) => {
  try {
    readStateDict(bytes, 'test.pth');
  } catch (error) {
    expect(error).toBeInstanceOf(CheckpointError);
    return (error as Error).message;
  }
  throw new Error('expected readStateDict to refuse the file');
};

// ---- a pickle assembler: enough opcodes to write what torch.save writes, and what it never would ----
const u32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeUInt32LE(n);
  return b;
};
const op = {
  proto: Buffer.from([0x80, 2]),
  global: (module: string, name: string) => Buffer.from(`c${module}\n${name}\n`, 'latin1'),
  str: (text: string) => Buffer.concat([Buffer.from('X'), u32(Buffer.byteLength(text)), Buffer.from(text)]),
  int: (n: number) => Buffer.from([0x4b, n]),
  mark: Buffer.from('('),
  tuple: Buffer.from('t'),
  emptyTuple: Buffer.from(')'),
  reduce: Buffer.from('R'),
  persid: Buffer.from('Q'),
  setitems: Buffer.from('u'),
  false: Buffer.from([0x89]),
  stop: Buffer.from('.'),
};
const orderedDict = Buffer.concat([op.global('collections', 'OrderedDict'), op.emptyTuple, op.reduce]);
const ints = (values: number[]) => Buffer.concat([op.mark, ...values.map(op.int), op.tuple]);

/** `{name: tensor}` where the tensor is a view of storage "0" (`numel` values of `storage` type). */
function statePickle(
  options: { storage?: string; numel?: number; offset?: number; shape?: number[]; strides?: number[] } = {},
) {
  const { storage = 'FloatStorage', numel = 2, offset = 0, shape = [2] } = options;
  const strides = options.strides ?? shape.map((_, i) => shape.slice(i + 1).reduce((a, b) => a * b, 1));
  const tensor = Buffer.concat([
    op.global('torch._utils', '_rebuild_tensor_v2'),
    op.mark,
    Buffer.concat([op.mark, op.str('storage'), op.global('torch', storage), op.str('0'), op.str('cpu')]),
    op.int(numel),
    op.tuple,
    op.persid,
    op.int(offset),
    ints(shape),
    ints(strides),
    op.false,
    orderedDict,
    op.tuple,
    op.reduce,
  ]);
  return Buffer.concat([op.proto, orderedDict, op.mark, op.str('w'), tensor, op.setitems, op.stop]);
}

const floats = (...values: number[]) => Buffer.from(Float32Array.from(values).buffer);
const archive = (pickle: Buffer, extra: Record<string, Uint8Array | string> = {}) =>
  zipStored({ 'archive/data.pkl': pickle, 'archive/data/0': floats(1.5, -2), ...extra });

describe('readStateDict on files torch wrote', () => {
  it('reads views (transposed, offset), int64 scalars and empty tensors with their values', () => {
    const state = readStateDict(fixture('views.pth'), 'views.pth');
    expect([...state.keys()]).toEqual(['grid', 'grid_t', 'middle', 'count', 'empty']);
    expect(state.get('grid')).toEqual({
      dtype: 'float32',
      shape: [2, 3],
      data: Float32Array.from([0, 1, 2, 3, 4, 5]).map((v) => v / 4),
    });
    // grid.t(): the same storage read with strides (1, 3)
    expect([...state.get('grid_t')!.data]).toEqual([0, 3, 1, 4, 2, 5].map((v) => v / 4));
    expect(state.get('grid_t')!.shape).toEqual([3, 2]);
    expect([...state.get('middle')!.data]).toEqual([0.5, 1.5, 2.5, 3.5]);
    expect(state.get('count')).toEqual({ dtype: 'int64', shape: [], data: BigInt64Array.from([7n]) });
    expect(state.get('empty')).toMatchObject({ dtype: 'float32', shape: [0] });
    expect(state.get('empty')!.data).toHaveLength(0);
  });

  it('reads the same records compressed and with zip64 headers (re-zipped by Python)', () => {
    expect(readStateDict(fixture('deflated.pth'), 'deflated.pth')).toEqual(readStateDict(fixture('views.pth'), 'v'));
  });

  it('refuses a pickle that names os.system, without running it', () => {
    expect(failure(fixture('hostile.pth'))).toMatch(/names posix\.system, which a plain state_dict does not contain/);
    expect(existsSync('checkpoint-reader-ran-a-command')).toBe(false);
  });
});

describe('readStateDict on archives built byte by byte', () => {
  it('reads a well-formed one (the assembler writes what torch writes)', () => {
    const state = readStateDict(archive(statePickle()), 'test.pth');
    expect(state.get('w')).toEqual({ dtype: 'float32', shape: [2], data: Float32Array.from([1.5, -2]) });
  });

  it('reads a dict of nn.Parameter (torch._utils._rebuild_parameter) as its tensors', () => {
    const plain = statePickle();
    const at = plain.indexOf(op.global('torch._utils', '_rebuild_tensor_v2'));
    const tensorEnd = plain.length - op.setitems.length - op.stop.length;
    const parameter = Buffer.concat([
      plain.subarray(0, at),
      op.global('torch._utils', '_rebuild_parameter'),
      op.mark,
      plain.subarray(at, tensorEnd),
      op.false,
      orderedDict,
      op.tuple,
      op.reduce,
      op.setitems,
      op.stop,
    ]);
    expect([...readStateDict(archive(parameter), 't').get('w')!.data]).toEqual([1.5, -2]);
  });

  it('reads sizes and offsets from zip64 extra fields of the central directory', () => {
    const state = readStateDict(
      zipStored({ 'archive/data.pkl': statePickle(), 'archive/data/0': floats(1.5, -2) }, { zip64: true }),
      't',
    );
    expect([...state.get('w')!.data]).toEqual([1.5, -2]);
  });

  it('refuses any global outside the allow-list and any call of a non-callable one', () => {
    const evil = Buffer.concat([
      op.proto,
      op.global('builtins', 'eval'),
      op.str('1'),
      Buffer.from([0x85]),
      op.reduce,
      op.stop,
    ]);
    expect(failure(archive(evil))).toMatch(/names builtins\.eval.*refused/);
    const storageCall = Buffer.concat([
      op.proto,
      op.global('torch', 'FloatStorage'),
      op.emptyTuple,
      op.reduce,
      op.stop,
    ]);
    expect(failure(archive(storageCall))).toMatch(/REDUCE calls something that is not an allowed global/);
  });

  it('refuses opcodes a state_dict does not use, and truncated pickles', () => {
    const newobj = Buffer.concat([op.proto, orderedDict, op.emptyTuple, Buffer.from([0x81]), op.stop]);
    expect(failure(archive(newobj))).toMatch(/pickle opcode 0x81 is not one a state_dict uses/);
    // Cut anywhere, a pickle fails with a CheckpointError, never anything else.
    const pickle = statePickle();
    for (let length = 0; length < pickle.length; length++) {
      expect(failure(archive(pickle.subarray(0, length)))).toMatch(/ends in the middle|stack|MARK|stops/);
    }
  });

  it('refuses tensors that reach past their storage or storages of the wrong size', () => {
    expect(failure(archive(statePickle({ shape: [3], numel: 2 })))).toMatch(/more elements than its storage/);
    expect(failure(archive(statePickle({ offset: 1 })))).toMatch(/reaches past its storage/);
    // stride 0 repeats one value: 200 elements from a storage of 2 (a tensor bomb), never in a state_dict
    expect(failure(archive(statePickle({ shape: [200], strides: [0] })))).toMatch(/more elements than its storage/);
    expect(failure(archive(statePickle({ numel: 3, shape: [3] })))).toMatch(/has 8 bytes, not 3 float32 values/);
    const noData = zipStored({ 'archive/data.pkl': statePickle() });
    expect(failure(noData)).toMatch(/tensor data 0 is missing/);
  });

  it('refuses other dtypes, big-endian files and training checkpoints with a way out', () => {
    expect(failure(archive(statePickle({ storage: 'HalfStorage' })))).toMatch(/torch\.HalfStorage.*v\.float\(\)/);
    expect(failure(archive(statePickle(), { 'archive/byteorder': 'big' }))).toMatch(/big-endian/);
    const nested = Buffer.concat([
      op.proto,
      Buffer.from('}'),
      op.str('model'),
      Buffer.from('}'),
      Buffer.from('s'),
      op.stop,
    ]);
    expect(failure(archive(nested))).toMatch(/dict under "model".*torch\.save\(checkpoint\["model"\], FILE\)/);
  });

  it('refuses what is not a zip, a truncated or damaged one, and the legacy format', () => {
    expect(failure(Buffer.from('not a checkpoint at all, just text'))).toMatch(/not a zip archive/);
    const views = fixture('views.pth');
    expect(failure(views.subarray(0, views.length - 40))).toMatch(/not a readable torch\.save archive/);
    const damaged = Buffer.from(views);
    damaged[views.indexOf(floats(-2.5, -1.5, -0.5)) + 5] ^= 0x40; // inside the storage of `middle`
    expect(failure(damaged)).toMatch(/views\/data\/1 fails its CRC-32 check \(the file is damaged\)/);
    expect(failure(Buffer.concat([op.proto, Buffer.alloc(40)]))).toMatch(/legacy torch\.save format/);
    expect(failure(zipStored({ 'a/b/data.pkl': statePickle() }))).toMatch(/no single <name>\/data\.pkl/);
  });

  it('fails only with CheckpointError, whichever byte of a real file is cut off or damaged', () => {
    const views = fixture('views.pth');
    const outcome = (bytes: Buffer) => {
      try {
        readStateDict(bytes, 'views.pth');
        return 'read';
      } catch (error) {
        return error instanceof CheckpointError ? 'refused' : String(error);
      }
    };
    const outcomes = new Set<string>();
    for (let at = 0; at < views.length; at++) {
      outcomes.add(outcome(views.subarray(0, at)));
      const damaged = Buffer.from(views);
      damaged[at] ^= 0xff;
      outcomes.add(outcome(damaged));
    }
    expect([...outcomes].filter((o) => o !== 'read' && o !== 'refused')).toEqual([]);
    expect(outcomes).toContain('refused');
  });
});
