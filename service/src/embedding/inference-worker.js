// One onnxruntime session in a worker thread. onnxruntime-node's run() is synchronous native code
// (its promise only defers the call), so inference on the main thread would block every request
// and leave the second vCPU idle; a pool of these workers runs inferences side by side.
// Plain JavaScript so that it loads the same way under tsx, vitest and the compiled build.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';

/** @type {{ path: string, threads: number }} */
const { path, threads } = workerData;
const port = /** @type {import('node:worker_threads').MessagePort} */ (parentPort);

try {
  const session = await ort.InferenceSession.create(path, {
    intraOpNumThreads: threads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
  });
  port.on(
    'message',
    async (/** @type {{ id: number, input: string, output: string, data: Float32Array, dims: number[] }} */ job) => {
      try {
        const result = await session.run({ [job.input]: new ort.Tensor('float32', job.data, job.dims) }, [job.output]);
        const tensor = result[job.output];
        const data = /** @type {Float32Array} */ (tensor.data);
        port.postMessage({ id: job.id, data, dims: tensor.dims }, [/** @type {ArrayBuffer} */ (data.buffer)]);
      } catch (error) {
        port.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
      }
    },
  );
  port.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
} catch (error) {
  port.postMessage({ ready: false, error: error instanceof Error ? error.message : String(error) });
}
