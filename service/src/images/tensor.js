// Decoded pixels (HWC uint8) → the model's input (CHW float32: /255, then per channel (x - mean) / std).
// Plain JavaScript because the inference worker (inference-worker.js, plain for the reasons given there) runs
// it too: a single image travels to its worker as uint8 pixels (a quarter of the float bytes) and is normalised
// there into a buffer the worker reuses, which keeps a 600 KB allocation per image off the main thread.

/**
 * @param {Uint8Array} pixels  crop × crop pixels of `channels` interleaved channels (the first 3 are RGB)
 * @param {number} channels
 * @param {{ crop: number, mean: readonly number[], std: readonly number[] }} spec
 * @param {Float32Array} [out]  where to write (3 × crop × crop floats); a new array when absent
 * @returns {Float32Array}
 */
export function toTensor(pixels, channels, spec, out = new Float32Array(3 * spec.crop * spec.crop)) {
  const area = spec.crop * spec.crop;
  for (let c = 0; c < 3; c++) {
    const scale = 1 / (255 * spec.std[c]);
    const offset = spec.mean[c] / spec.std[c];
    const plane = c * area;
    for (let i = 0; i < area; i++) out[plane + i] = pixels[i * channels + c] * scale - offset;
  }
  return out;
}
