// The item-level scoring rules on hand-made numbers: per-kind z-scores averaged over an item's kinds, the
// image refinement and its near-copy rule, and the answer's confidences (the first row's from the fitted
// model, later rows only from their own evidence, all of them adding up to at most 1).
import { describe, expect, it } from 'vitest';
import {
  answerOf,
  CENTROID_WEIGHT,
  CONFIDENCE_MODEL,
  confidenceOf,
  featuresOf,
  rankItems,
  refineItems,
  MIN_KIND_SAMPLE,
  queryStats,
  type CentroidScores,
  type QueryStats,
  type RefinedItem,
} from '../../../service/src/catalog/scoring.js';
import { makeRecord } from '../../support/store-contract.js';

const stats: QueryStats = { kinds: { catalog: { mean: 0.5, sd: 0.1 }, photo: { mean: 0.7, sd: 0.05 } } };

describe('rankItems', () => {
  it('z-scores each kind against its own statistics and averages the kinds an item has', () => {
    const scores: CentroidScores = new Map([
      ['catalog-only', { catalog: 0.8 }], // z 3
      ['both', { catalog: 0.7, photo: 0.85 }], // z 2 and 3 → 2.5
      ['photo-only', { photo: 0.8 }], // z 2: a high raw photo cosine is ordinary among photos
    ]);
    const ranked = rankItems(scores, stats);
    expect(ranked.map((r) => r.item_id)).toEqual(['catalog-only', 'both', 'photo-only']);
    expect(ranked[1].z.catalog).toBeCloseTo(2, 10);
    expect(ranked[1].z.photo).toBeCloseTo(3, 10);
    expect(ranked[1].score).toBeCloseTo(2.5, 10);
  });

  it('a kind without statistics of its own is left out, unless the item has no other kind (pooled stats)', () => {
    const few: QueryStats = { kinds: { catalog: { mean: 0.5, sd: 0.1 } }, pooled: { mean: 0.6, sd: 0.1 } };
    const ranked = rankItems(
      new Map([
        ['taught', { catalog: 0.6, photo: 0.99 }],
        ['photos-only', { photo: 0.8 }],
      ]),
      few,
    );
    expect(ranked).toEqual([
      { item_id: 'photos-only', z: { photo: expect.closeTo(2, 10) }, score: expect.closeTo(2, 10) },
      { item_id: 'taught', z: { catalog: expect.closeTo(1, 10) }, score: expect.closeTo(1, 10) },
    ]);
  });
});

describe('queryStats', () => {
  it(`gives a kind statistics from ${MIN_KIND_SAMPLE} centroids on, and pools every sample`, () => {
    const unit = (...v: number[]) => Float32Array.from(v.map((x) => x / Math.hypot(...v)));
    const catalog = Array.from({ length: MIN_KIND_SAMPLE }, (_, i) => unit(1, i / 10, 0));
    const photo = Array.from({ length: MIN_KIND_SAMPLE - 1 }, (_, i) => unit(0, 1, i / 10));
    const query = unit(1, 0, 0);
    const stats = queryStats(query, { catalog, photo });
    expect(Object.keys(stats.kinds)).toEqual(['catalog']);
    const sims = catalog.map((v) => v[0]);
    const mean = sims.reduce((a, b) => a + b, 0) / sims.length;
    expect(stats.kinds.catalog!.mean).toBeCloseTo(mean, 6);
    const pooled = [...sims, ...photo.map((v) => v[0])];
    expect(stats.pooled!.mean).toBeCloseTo(pooled.reduce((a, b) => a + b, 0) / pooled.length, 6);
    expect(queryStats(query, { catalog: [], photo: [] })).toEqual({ kinds: {}, pooled: undefined });
  });
});

describe('refineItems', () => {
  const image = (item: string, kind: 'catalog' | 'photo', score: number) => ({
    record: makeRecord(item, 1, { kind }),
    score,
  });

  it('gives the best image of each kind a quarter of the weight and keeps the best image overall', () => {
    const [row] = refineItems(
      [{ item_id: 'a', score: 2, z: { catalog: 2 } }],
      [image('a', 'catalog', 0.9), image('a', 'catalog', 0.6)],
      stats,
    );
    expect(row.score).toBeCloseTo(CENTROID_WEIGHT * 2 + (1 - CENTROID_WEIGHT) * 4, 10);
    expect(row.best.score).toBe(0.9);
  });

  it("a near copy of the query counts in full, whatever the item's other images and their statistics", () => {
    const rows = refineItems(
      [
        { item_id: 'typical', score: 3, z: { catalog: 3 } },
        { item_id: 'copy', score: 0, z: { catalog: 0 } },
      ],
      [image('typical', 'catalog', 0.8), image('copy', 'catalog', 0.5), image('copy', 'photo', 0.999)],
      stats,
    );
    expect(rows.map((r) => r.item_id)).toEqual(['copy', 'typical']);
    // The lower of its z-scores against each kind's statistics: (0.999 - 0.5) / 0.1 = 4.99 (photo: 5.98).
    expect(rows[0].score).toBeCloseTo(4.99, 10);
    expect(rows[0].best.record.kind).toBe('photo');
  });

  it('drops items without a scored image', () => {
    expect(refineItems([{ item_id: 'gone', score: 1, z: { catalog: 1 } }], [], stats)).toEqual([]);
  });
});

describe('answerOf', () => {
  const row = (item: string, score: number, best: number): RefinedItem => ({
    item_id: item,
    score,
    z: { catalog: score },
    best: { record: makeRecord(item, 1), score: best },
  });

  it("the first row's confidence is the model's; later rows never exceed what the rows above leave", () => {
    const rows = [row('a', 3.5, 0.9), row('b', 1.5, 0.75), row('c', 1.4, 0.74), row('d', 1.0, 0.7)];
    const answer = answerOf(rows, 3, 0);
    expect(answer.results.map((r) => r.record.item_id)).toEqual(['a', 'b', 'c']);
    expect(answer.results[0].confidence).toBeCloseTo(confidenceOf(featuresOf(rows)), 12);
    expect(answer.results[0].confidence).toBeGreaterThanOrEqual(CONFIDENCE_MODEL.thresholds.confident);
    expect(answer.match).toBe('confident');
    const sum = answer.results.reduce((total, r) => total + r.confidence, 0);
    expect(sum).toBeLessThanOrEqual(1);
    expect(answer.results[1].confidence).toBeLessThanOrEqual(1 - answer.results[0].confidence);
  });

  it('a weak first row does not hand its doubt to the next rows: none of them looks confident', () => {
    const rows = [row('a', 1.2, 0.7), row('b', 1.15, 0.69), row('c', 1.1, 0.69), row('d', 1.05, 0.68)];
    const answer = answerOf(rows, 3, 0);
    expect(answer.match).toBe('none');
    for (const r of answer.results) expect(r.confidence).toBeLessThan(CONFIDENCE_MODEL.thresholds.none);
  });

  it('min_confidence drops rows below it; no rows → none', () => {
    const rows = [row('a', 3.5, 0.9), row('b', 1.5, 0.75), row('c', 1.4, 0.74)];
    const all = answerOf(rows, 3, 0);
    const kept = answerOf(rows, 3, all.results[0].confidence);
    expect(kept.results.map((r) => r.record.item_id)).toEqual(['a']);
    expect(answerOf([], 5, 0)).toEqual({ match: 'none', results: [] });
  });
});
