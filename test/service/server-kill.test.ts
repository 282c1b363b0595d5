// The crash soak (test/support/kill-soak.ts) at CI size: the real server process killed with SIGKILL during
// ingests, deletes and wipes, restarted, and checked. `npm run soak:kill` runs the same for many rounds.
import { describe, expect, it } from 'vitest';
import { runKillSoak } from '../support/kill-soak.js';

describe('kill -9 during ingests, deletes and wipes', () => {
  it('always restarts, files and points agree, nothing acknowledged is lost', { timeout: 300_000 }, async () => {
    const result = await runKillSoak({ rounds: 4, maxRoundMs: 2500 });
    expect(result.restarts).toBe(4);
    expect(result.acknowledged.ingests).toBeGreaterThan(10);
    expect(result.acknowledged.deletes).toBeGreaterThan(0);
    expect(result.lost).toEqual([]);
    expect(result.cameBack).toEqual([]);
    expect(result.inconsistentRounds).toBe(0);
  });
});
