// From the store's nearest items to an answer: a confidence per row and a verdict on the whole answer.
// (Placeholder scoring: the item-level scoring and calibrated confidence of the matching work replace it.)
import type { ImageRecord, ItemMatch } from '../store/port.js';

export type Match = 'confident' | 'uncertain' | 'none';

export interface ScoredItem {
  /** The item's best-matching image. */
  record: ImageRecord;
  score: number;
  confidence: number;
}

export interface SearchAnswer {
  match: Match;
  results: ScoredItem[];
}

const sigmoid = (x: number) => 1 / (1 + Math.exp(-x));

export function scoreAnswer(matches: ItemMatch[], minConfidence: number): SearchAnswer {
  const scores = matches.map((m) => m.score);
  const results = matches.map((match, i) => {
    const next = scores[i + 1] ?? scores[i]! - 0.05;
    const confidence = sigmoid(40 * (match.score - next) + 12 * (match.score - 0.8));
    return { record: match.record, score: match.score, confidence };
  });
  const top = results[0]?.confidence ?? 0;
  const match: Match = top >= 0.7 ? 'confident' : top >= 0.3 ? 'uncertain' : 'none';
  return { match, results: results.filter((row) => row.confidence >= minConfidence) };
}
