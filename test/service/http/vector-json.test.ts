// vectorJson: valid JSON whose numbers read back as exactly the same float32 values, at every magnitude.
import { describe, expect, it } from 'vitest';
import { float32Json, vectorJson } from '../../../service/src/http/vector-json.js';

/** xorshift32: the same values on every run. */
function random(seed: number): () => number {
  let state = seed;
  return () => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
}

describe('vectorJson', () => {
  it('reads back as the same float32 values, for 200,000 values over every magnitude and sign', () => {
    const next = random(7);
    const values = Float32Array.from({ length: 200_000 }, () => (next() - 0.5) * 2 * 10 ** -Math.floor(next() * 40));
    const parsed = JSON.parse(vectorJson(values)) as number[];
    expect(parsed).toHaveLength(values.length);
    const wrong = parsed.map((x, i) => [x, values[i]!]).filter(([x, v]) => Math.fround(x!) !== v);
    expect(wrong).toEqual([]);
  });

  it('is exact at the edges: powers of ten, rounding up to the next power, zero, ±1, and the float32 extremes', () => {
    const edges = [
      0,
      -0,
      1,
      -1,
      0.1,
      0.01,
      1e-7,
      9.9999999e-8,
      0.99999999,
      0.999999999,
      0.099999999,
      1e-6,
      0.5,
      0.25,
      1.4e-45,
      3.4028234663852886e38,
      2 ** -126,
      123.456,
      -0.000123456789,
    ].map(Math.fround);
    const parsed = JSON.parse(vectorJson(Float32Array.from(edges))) as number[];
    // -0 prints as 0, as JSON.stringify prints it (=== treats them as equal).
    parsed.forEach((x, i) => expect(Math.fround(x) === edges[i], `${edges[i]} read back as ${x}`).toBe(true));
    expect(vectorJson(new Float32Array(0))).toBe('[]');
    expect(float32Json(Math.fround(0.1))).toBe('0.100000001');
    expect(float32Json(0.5)).toBe('0.5');
    expect(float32Json(-0.25)).toBe('-0.25');
  });

  it('writes non-finite values as null, like JSON.stringify', () => {
    expect(JSON.parse(vectorJson(Float32Array.of(NaN, Infinity, -Infinity, 0.5)))).toEqual([null, null, null, 0.5]);
  });

  it('is shorter than JSON.stringify for the components of a unit vector', () => {
    const next = random(3);
    const vector = Float32Array.from({ length: 1280 }, () => next() - 0.5);
    const norm = Math.hypot(...vector);
    vector.forEach((x, i) => (vector[i] = x / norm));
    expect(vectorJson(vector).length).toBeLessThan(JSON.stringify(Array.from(vector)).length * 0.75);
  });
});
