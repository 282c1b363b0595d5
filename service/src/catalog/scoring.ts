// Item-level scoring and confidence. An item is scored from all its images, by kind: the query's cosine with
// the item's centroid of each kind it has images of (`catalog`: pictures of the product; `photo`: taken in
// place), turned into a z-score against the query's similarities to that kind's centroids over the whole
// catalog, and averaged over the item's kinds (a kind with fewer than 5 centroids in the catalog has no
// statistics yet and is left out); the leading items are then refined with a quarter weight on their best
// image of each kind, and an item with a copy of the query (cosine >= 0.995) scores at least that image's
// z-score. Why: a store photo resembles every other store photo (shelves,
// hands, light) more than any catalog picture, so raw cosines let items that have photos win queries they
// should lose; within each kind the comparison is fair, and more photos of an item only make its photo
// centroid more typical of it. With catalog images only, the ranking is the plain cosine one.
//
// Confidence (0-1) that the first row is right comes from a logistic model over how far ahead it is
// (its score, its lead on the second, its best image's cosine and that image's lead), fitted on the
// grocery development set with `npm run fit:confidence` (the constants below are its output); a later row
// gets the same model on the rows from it down, times the chance that every row above is wrong (so the
// confidences of an answer add up to at most 1). `match` turns the first row's confidence into a verdict.
import type { ImageKind } from '../schemas/records.js';
import type { ImageRecord, ItemMatch } from '../store/port.js';

export type Match = 'confident' | 'uncertain' | 'none';

export interface ScoredItem {
  /** The item's best-matching image (its fields are the item's). */
  record: ImageRecord;
  score: number;
  confidence: number;
}

export interface SearchAnswer {
  match: Match;
  results: ScoredItem[];
  /** What the confidence was computed from (for evaluation; not part of the API). */
  features?: number[];
}

/** A query's similarities to one kind's centroids: their mean and spread, from a sample. */
export interface KindStats {
  mean: number;
  sd: number;
}

export interface RankedItem {
  item_id: string;
  score: number;
  /** Centroid z-score per kind the item has images of. */
  z: Partial<Record<ImageKind, number>>;
}

/** Weight of the centroid in the refined score; the best image of the kind has the rest. */
export const CENTROID_WEIGHT = 0.75;

/**
 * A best image at least this close is taken as the query's own picture (a stored file sent again): it then
 * decides the answer, so the rule must not fire for anything else. Two different products' pictures reach
 * 0.962 and two store photos of one product taken in a row about as much (grocery-dev, MobileNetV2), so
 * only (nearly) the same bytes count.
 */
export const NEAR_COPY_COSINE = 0.995;

/** The spread is never taken below this, so a catalog of one or two items cannot blow the z-scores up. */
const MIN_SD = 0.02;

export function dot(a: Float32Array, b: Float32Array): number {
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += a[i]! * b[i]!;
  return sum;
}

export function statsOf(query: Float32Array, sample: Float32Array[]): KindStats | undefined {
  if (sample.length === 0) return undefined;
  const sims = sample.map((vector) => dot(query, vector));
  const mean = sims.reduce((a, b) => a + b, 0) / sims.length;
  const variance = sims.reduce((a, b) => a + (b - mean) ** 2, 0) / sims.length;
  return { mean, sd: Math.max(MIN_SD, Math.sqrt(variance)) };
}

/** Each item's cosine with its centroid of each kind. */
export type CentroidScores = Map<string, Partial<Record<ImageKind, number>>>;

/** Statistics per kind (kinds with enough centroids), and `pooled` over every kind's sample together. */
export interface QueryStats {
  kinds: Partial<Record<ImageKind, KindStats>>;
  pooled?: KindStats;
}

/**
 * A kind with fewer centroids than this across the catalog has no statistics of its own: one or two staff
 * photos would give a mean equal to their own cosine (every z 0). Items that also have another kind are
 * ranked by that kind alone until then; items with only such kinds use the pooled statistics.
 */
export const MIN_KIND_SAMPLE = 5;

export function queryStats(query: Float32Array, samples: Record<ImageKind, Float32Array[]>): QueryStats {
  const kinds: Partial<Record<ImageKind, KindStats>> = {};
  for (const [kind, sample] of Object.entries(samples) as Array<[ImageKind, Float32Array[]]>) {
    if (sample.length >= MIN_KIND_SAMPLE) kinds[kind] = statsOf(query, sample);
  }
  return { kinds, pooled: statsOf(query, Object.values(samples).flat()) };
}

/** Items by the mean of their per-kind z-scores, best first (see MIN_KIND_SAMPLE for kinds without stats). */
export function rankItems(scores: CentroidScores, stats: QueryStats): RankedItem[] {
  const ranked: RankedItem[] = [];
  for (const [item_id, byKind] of scores) {
    const entries = Object.entries(byKind) as Array<[ImageKind, number]>;
    const own = entries.filter(([kind]) => stats.kinds[kind] !== undefined);
    const z: Partial<Record<ImageKind, number>> = {};
    for (const [kind, score] of own.length > 0 ? own : entries) {
      const kindStats = statsFor(stats, kind);
      if (kindStats) z[kind] = (score - kindStats.mean) / kindStats.sd;
    }
    const values = Object.values(z);
    if (values.length > 0) ranked.push({ item_id, z, score: meanOf(values) });
  }
  return ranked.sort(byScore);
}

const statsFor = (stats: QueryStats, kind: ImageKind) => stats.kinds[kind] ?? stats.pooled;

const meanOf = (values: number[]) => values.reduce((a, b) => a + b, 0) / values.length;
const byScore = (a: { score: number }, b: { score: number }) => b.score - a.score;

export interface RefinedItem extends RankedItem {
  /** The item's best image over all kinds. */
  best: ItemMatch;
}

/**
 * The leading items rescored with their images: per kind, CENTROID_WEIGHT of the centroid's z-score and the
 * rest from the kind's best image (on the same scale), averaged over kinds; an item whose best image is a
 * near copy of the query scores at least that image's z-score. Items without scored images drop.
 * `nearCopyCosine`: the cosine from which an image is the query's own picture (lower when the query vector
 * mixes in a second view, which a stored copy of the whole picture does not match exactly).
 */
export function refineItems(
  ranked: RankedItem[],
  images: ItemMatch[],
  stats: QueryStats,
  nearCopyCosine = NEAR_COPY_COSINE,
): RefinedItem[] {
  const bestByKind = new Map<string, Partial<Record<ImageKind, number>>>();
  const bestOverall = new Map<string, ItemMatch>();
  for (const image of images) {
    const { item_id, kind } = image.record;
    const kinds = bestByKind.get(item_id) ?? {};
    kinds[kind] = Math.max(kinds[kind] ?? -Infinity, image.score);
    bestByKind.set(item_id, kinds);
    if ((bestOverall.get(item_id)?.score ?? -Infinity) < image.score) bestOverall.set(item_id, image);
  }
  const allStats = [...Object.values(stats.kinds), ...(stats.pooled ? [stats.pooled] : [])];
  return ranked
    .flatMap((item) => {
      const best = bestOverall.get(item.item_id);
      if (!best) return [];
      const parts = Object.entries(item.z).map(([kind, z]) => {
        const image = bestByKind.get(item.item_id)?.[kind as ImageKind];
        const kindStats = statsFor(stats, kind as ImageKind);
        if (image === undefined || !kindStats) return z;
        return CENTROID_WEIGHT * z + ((1 - CENTROID_WEIGHT) * (image - kindStats.mean)) / kindStats.sd;
      });
      let score = meanOf(parts);
      // The query is (nearly) one of the item's pictures, of any kind: that identifies the item whatever its
      // other images show, on the most demanding scale there is.
      if (best.score >= nearCopyCosine && allStats.length > 0) {
        score = Math.max(score, Math.min(...allStats.map((s) => (best.score - s.mean) / s.sd)));
      }
      return [{ ...item, score, best }];
    })
    .sort(byScore);
}

/** The fitted confidence model: standardisation and logistic weights per feature, then the bias. */
export const CONFIDENCE_MODEL = {
  features: ['score', 'lead', 'best_cosine', 'best_lead', 'kinds_agree'],
  // Fitted by `npm run fit:confidence` on ../shared/data/grocery-dev with MobileNetV2 (1488 answers over five
  // protocols; cross-validated AUROC 0.824). Refit when the scoring or the model family changes.
  mean: [2.053, 0.547, 0.8027, 0.002629, 0.7876],
  sd: [0.4641, 0.4468, 0.07594, 0.05436, 0.3153],
  weights: [0.8041, 0.7286, 0.407, 0.1365, 0.1835],
  bias: 0.7063,
  /** `confident` from here up (90 % of such first rows were right); `none` below (hides 10 % of right ones). */
  thresholds: { confident: 0.753, none: 0.379 },
};

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function confidenceOf(features: number[]): number {
  const m = CONFIDENCE_MODEL;
  let x = m.bias;
  features.forEach((value, i) => (x += (m.weights[i]! * (value - m.mean[i]!)) / m.sd[i]!));
  return sigmoid(x);
}

/**
 * What the confidence is computed from, in CONFIDENCE_MODEL.features order: the first row's score, its lead
 * on the second, its best image's cosine and that cosine's lead on the other rows' best images, and the share
 * of its kinds in which it also leads on the centroid alone (the kinds agree).
 */
export function featuresOf(rows: RefinedItem[]): number[] {
  const [first, ...others] = rows;
  if (!first) return [];
  const second = others[0];
  const othersBest = others.length > 0 ? Math.max(...others.map((row) => row.best.score)) : first.best.score - 0.1;
  const kinds = Object.keys(first.z) as ImageKind[];
  const leads = kinds.filter((kind) => others.every((row) => (row.z[kind] ?? -Infinity) <= first.z[kind]!));
  return [
    first.score,
    first.score - (second?.score ?? first.score - 1),
    first.best.score,
    first.best.score - othersBest,
    leads.length / kinds.length,
  ];
}

/**
 * The answer from the ranked items (at least two when there are two) and their best images: rows in rank
 * order with their confidences, the verdict, and rows below `minConfidence` dropped.
 */
export function answerOf(rows: RefinedItem[], limit: number, minConfidence: number): SearchAnswer {
  if (rows.length === 0) return { match: 'none', results: [] };
  const features = featuresOf(rows);
  // Row i is right if the rows above it are not and it wins among the rows from it down: its own evidence
  // counts, never a share of what the rows above lack (that mass also covers "not in the catalog").
  let above = 1;
  const results = rows.slice(0, limit).map((row, i) => {
    const own = i === 0 ? confidenceOf(features) : confidenceOf(featuresOf(rows.slice(i)));
    const confidence = above * own;
    above *= 1 - own;
    return { record: row.best.record, score: row.score, confidence };
  });
  const top = results[0]!.confidence;
  const { thresholds } = CONFIDENCE_MODEL;
  const match: Match = top >= thresholds.confident ? 'confident' : top < thresholds.none ? 'none' : 'uncertain';
  return { match, results: results.filter((row) => row.confidence >= minConfidence), features };
}
