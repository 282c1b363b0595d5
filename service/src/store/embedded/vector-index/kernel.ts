// Loads the WebAssembly kernel (kernel.wat, compiled into kernel-wasm.ts). The module is compiled once per
// process; each vector index instantiates it with its own memory, so indexes never share or overrun each
// other's buffers, and a dropped index frees its memory with it.
import { KERNEL_WASM_BASE64 } from './kernel-wasm.js';

/** The few WebAssembly APIs used here (TypeScript declares them only in its DOM library). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmApi {
  Module: new (bytes: Uint8Array) => object;
  Instance: new (module: object) => { exports: unknown };
}
const wasm = (globalThis as unknown as { WebAssembly: WasmApi }).WebAssembly;

export interface KernelExports {
  memory: WasmMemory;
  /** sum(a[i] * b[i]) over n int8 values at byte offsets a and b; n a multiple of 16. */
  dot_i8(a: number, b: number, n: number): number;
  /** out[i] (int32) = dot_i8(q, codes + slots[i] * n, n) for i < count. */
  scan_i8(q: number, codes: number, slots: number, count: number, n: number, out: number): void;
}

let compiled: object | undefined;

export function instantiateKernel(): KernelExports {
  compiled ??= new wasm.Module(Buffer.from(KERNEL_WASM_BASE64, 'base64'));
  return new wasm.Instance(compiled).exports as KernelExports;
}

export const WASM_PAGE = 65536;
