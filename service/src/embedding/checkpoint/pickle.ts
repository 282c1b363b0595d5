// A restricted unpickler for torch.save's data.pkl. A pickle is a program: a general unpickler would run
// whatever global the file names. This one knows only the data opcodes a state_dict uses, and calls a
// global only through the caller's allow-list (`resolve`); any other opcode or global is refused.
import { CheckpointError } from './errors.js';

/** A callable the caller allows: `collections.OrderedDict`, `torch._utils._rebuild_tensor_v2`, ... */
export interface PickleGlobal {
  readonly qualifiedName: string;
  call?(args: unknown[]): unknown;
  /** BUILD on an object this global made; absent = BUILD is refused. */
  build?(target: unknown, state: unknown): void;
}

export interface UnpickleHooks {
  /** Returns the allowed global or throws a CheckpointError naming why not. */
  resolve(module: string, name: string): PickleGlobal;
  /** BINPERSID: torch stores tensor data outside the pickle and refers to it by a persistent id. */
  persistentLoad(pid: unknown): unknown;
}

const MARK = Symbol('mark');

export function unpickle(bytes: Uint8Array, hooks: UnpickleHooks, what: string): unknown {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const stack: unknown[] = [];
  const memo = new Map<number, unknown>();
  let at = 0;

  const fail = (reason: string) => new CheckpointError(`${what}: ${reason} (at byte ${at} of the pickle).`);
  const take = (length: number) => {
    if (length < 0 || at + length > bytes.length) throw fail('it ends in the middle of a value');
    const start = at;
    at += length;
    return start;
  };
  const u8 = () => bytes[take(1)];
  const u16 = () => view.getUint16(take(2), true);
  const u32 = () => view.getUint32(take(4), true);
  const i32 = () => view.getInt32(take(4), true);
  const text = (length: number) => {
    const start = take(length);
    try {
      return decoder.decode(bytes.subarray(start, start + length));
    } catch {
      throw fail('a string is not valid UTF-8');
    }
  };
  const line = () => {
    const end = bytes.indexOf(0x0a, at);
    if (end < 0) throw fail('it ends in the middle of a GLOBAL name');
    return text(end - at + 1).slice(0, -1);
  };
  const pop = () => {
    if (stack.length === 0 || stack.at(-1) === MARK) throw fail('the stack is empty');
    return stack.pop();
  };
  const popMark = () => {
    const mark = stack.lastIndexOf(MARK);
    if (mark < 0) throw fail('a MARK is missing');
    const items = stack.splice(mark);
    items.shift();
    return items;
  };
  const top = () => {
    if (stack.length === 0 || stack.at(-1) === MARK) throw fail('the stack is empty');
    return stack.at(-1);
  };
  const dictOnTop = (): Map<unknown, unknown> => {
    const dict = top();
    if (!(dict instanceof Map)) throw fail('SETITEM on something that is not a dict');
    return dict;
  };
  const listOnTop = (): unknown[] => {
    const list = top();
    if (!Array.isArray(list) || Object.isFrozen(list)) throw fail('APPEND on something that is not a list');
    return list;
  };
  const recall = (index: number) => {
    if (!memo.has(index)) throw fail(`memo ${index} is used before it is set`);
    return memo.get(index);
  };
  const tuple = (items: unknown[]) => Object.freeze(items);
  const global = (module: string, name: string) => stack.push(hooks.resolve(module, name));
  const isGlobal = (value: unknown): value is PickleGlobal =>
    typeof value === 'object' && value !== null && 'qualifiedName' in value;
  /** Objects made by REDUCE remember their maker, so BUILD can ask that maker whether it may apply state. */
  const makers = new WeakMap<object, PickleGlobal>();

  for (;;) {
    const opcode = u8();
    switch (opcode) {
      case 0x80: // PROTO
        if (u8() > 5) throw fail('it uses an unknown pickle protocol');
        break;
      case 0x95: // FRAME (protocol 4): a length hint only
        take(8);
        break;
      case 0x2e: // STOP
        if (stack.length !== 1) throw fail('it stops with a malformed stack');
        return stack[0];
      case 0x28: // MARK
        stack.push(MARK);
        break;
      case 0x29: // EMPTY_TUPLE
        stack.push(tuple([]));
        break;
      case 0x74: // TUPLE
        stack.push(tuple(popMark()));
        break;
      case 0x85: // TUPLE1
      case 0x86: // TUPLE2
      case 0x87: {
        // TUPLE3
        const items = Array.from({ length: opcode - 0x84 }, pop).reverse();
        stack.push(tuple(items));
        break;
      }
      case 0x5d: // EMPTY_LIST
        stack.push([]);
        break;
      case 0x61: {
        // APPEND
        const value = pop();
        listOnTop().push(value);
        break;
      }
      case 0x65: {
        // APPENDS
        const items = popMark();
        listOnTop().push(...items);
        break;
      }
      case 0x7d: // EMPTY_DICT
        stack.push(new Map());
        break;
      case 0x73: {
        // SETITEM
        const value = pop();
        const key = pop();
        dictOnTop().set(key, value);
        break;
      }
      case 0x75: {
        // SETITEMS
        const items = popMark();
        if (items.length % 2 !== 0) throw fail('SETITEMS has an odd number of items');
        const dict = dictOnTop();
        for (let i = 0; i < items.length; i += 2) dict.set(items[i], items[i + 1]);
        break;
      }
      case 0x4e: // NONE
        stack.push(null);
        break;
      case 0x88: // NEWTRUE
        stack.push(true);
        break;
      case 0x89: // NEWFALSE
        stack.push(false);
        break;
      case 0x4b: // BININT1
        stack.push(u8());
        break;
      case 0x4d: // BININT2
        stack.push(u16());
        break;
      case 0x4a: // BININT
        stack.push(i32());
        break;
      case 0x8a: {
        // LONG1: little-endian two's complement of n bytes; only values a double holds exactly
        const length = u8();
        const start = take(length);
        let value = 0n;
        for (let i = length - 1; i >= 0; i--) value = (value << 8n) | BigInt(bytes[start + i]);
        if (length > 0 && bytes[start + length - 1] & 0x80) value -= 1n << BigInt(8 * length);
        if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < -BigInt(Number.MAX_SAFE_INTEGER))
          throw fail('an integer is too large');
        stack.push(Number(value));
        break;
      }
      case 0x47: // BINFLOAT (big-endian)
        stack.push(view.getFloat64(take(8), false));
        break;
      case 0x58: // BINUNICODE
        stack.push(text(u32()));
        break;
      case 0x8c: // SHORT_BINUNICODE
        stack.push(text(u8()));
        break;
      case 0x71: // BINPUT
        memo.set(u8(), top());
        break;
      case 0x72: // LONG_BINPUT
        memo.set(u32(), top());
        break;
      case 0x94: // MEMOIZE
        memo.set(memo.size, top());
        break;
      case 0x68: // BINGET
        stack.push(recall(u8()));
        break;
      case 0x6a: // LONG_BINGET
        stack.push(recall(u32()));
        break;
      case 0x63: {
        // GLOBAL "module\nname\n"
        const module = line();
        global(module, line());
        break;
      }
      case 0x93: {
        // STACK_GLOBAL
        const name = pop();
        const module = pop();
        if (typeof module !== 'string' || typeof name !== 'string') throw fail('STACK_GLOBAL needs two strings');
        global(module, name);
        break;
      }
      case 0x52: {
        // REDUCE: call an allowed global with a tuple of arguments
        const args = pop();
        const callable = pop();
        if (!isGlobal(callable) || !callable.call) throw fail('REDUCE calls something that is not an allowed global');
        if (!Array.isArray(args)) throw fail(`${callable.qualifiedName} is called without an argument tuple`);
        const result = callable.call([...(args as unknown[])]);
        if (typeof result === 'object' && result !== null) makers.set(result, callable);
        stack.push(result);
        break;
      }
      case 0x62: {
        // BUILD: set an object's state, only where its maker allows it
        const state = pop();
        const target = top();
        const maker = typeof target === 'object' && target !== null ? makers.get(target) : undefined;
        if (!maker?.build) throw fail('BUILD on an object that takes no state');
        maker.build(target, state);
        break;
      }
      case 0x51: // BINPERSID
        stack.push(hooks.persistentLoad(pop()));
        break;
      default:
        throw fail(
          `pickle opcode 0x${opcode.toString(16).padStart(2, '0')} is not one a state_dict uses, so it is refused`,
        );
    }
  }
}
