// One onnxruntime session in a worker thread. onnxruntime-node's run() is synchronous native code
// (its promise only defers the call), so inference on the main thread would block every request
// and leave the second vCPU idle; a pool of these workers runs inferences side by side.
// Plain JavaScript so that it loads the same way under tsx, vitest and the compiled build.
import { parentPort, workerData } from 'node:worker_threads';
import * as ort from 'onnxruntime-node';
import { toTensor } from '../images/tensor.js';

/**
 * A batch of CHW tensors (`data`, `dims`), or one image's crop as uint8 pixels with how to normalise them.
 * @typedef {{ id: number, input: string, output: string } & ({ data: Float32Array, dims: number[] }
 *   | { pixels: Uint8Array, channels: number, spec: { crop: number, mean: number[], std: number[] } })} Job
 */

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
  /** The input of single-image jobs, reused: the pool gives a worker one job at a time. */
  let reused = new Float32Array(0);
  /** @param {Job} job @returns {ort.Tensor} */
  const inputOf = (job) => {
    if ('data' in job) return new ort.Tensor('float32', job.data, job.dims);
    const { crop } = job.spec;
    if (reused.length !== 3 * crop * crop) reused = new Float32Array(3 * crop * crop);
    return new ort.Tensor('float32', toTensor(job.pixels, job.channels, job.spec, reused), [1, 3, crop, crop]);
  };
  port.on('message', async (/** @type {Job} */ job) => {
    try {
      const result = await session.run({ [job.input]: inputOf(job) }, [job.output]);
      const tensor = result[job.output];
      const data = /** @type {Float32Array} */ (tensor.data);
      port.postMessage({ id: job.id, data, dims: tensor.dims }, [/** @type {ArrayBuffer} */ (data.buffer)]);
    } catch (error) {
      port.postMessage({ id: job.id, error: error instanceof Error ? error.message : String(error) });
    }
  });
  port.postMessage({ ready: true, inputNames: session.inputNames, outputNames: session.outputNames });
} catch (error) {
  port.postMessage({ ready: false, error: error instanceof Error ? error.message : String(error) });
}
