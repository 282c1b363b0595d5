// The shared CLI pieces: strict option parsing with clear errors, help text, and the reporter's output
// on a terminal (a redrawn bar with counts and ETA) and in logs (plain lines, one JSON summary line).
import { describe, expect, it } from 'vitest';
import {
  consoleReporter,
  formatDuration,
  helpText,
  integerOption,
  parseOptions,
  UsageError,
  type CommandSpec,
} from '../../scripts/cli.js';

const spec: CommandSpec = {
  name: 'demo',
  summary: 'Does a demo.',
  options: {
    keep: { type: 'string', placeholder: 'N', description: 'How many to keep.' },
    wait: { type: 'boolean', description: 'Wait for it.' },
  },
  details: 'More words.',
};

function capture(isTTY: boolean) {
  const out: string[] = [];
  const err: string[] = [];
  let time = 0;
  const reporter = consoleReporter({
    stdout: { write: (text: string) => out.push(text) },
    stderr: { write: (text: string) => err.push(text), isTTY, columns: 120 },
    now: () => time,
    lineEveryMs: 5000,
  });
  return { reporter, out, err, tick: (ms: number) => (time += ms) };
}

describe('parseOptions', () => {
  it('reads known flags', () => {
    expect(parseOptions(spec, ['--keep', '3', '--wait'])).toMatchObject({ keep: '3', wait: true });
    expect(parseOptions(spec, ['--help']).help).toBe(true);
  });

  it('refuses unknown flags, missing values and stray words with one clear sentence', () => {
    expect(() => parseOptions(spec, ['--bogus'])).toThrow(new UsageError("Unknown option '--bogus'"));
    expect(() => parseOptions(spec, ['--keep'])).toThrow(/Option '--keep <value>' argument missing/);
    expect(() => parseOptions(spec, ['extra'])).toThrow(new UsageError('unexpected argument "extra"'));
  });

  it('integerOption checks range and form', () => {
    expect(integerOption('7', 'keep', 1, 10)).toBe(7);
    expect(integerOption(undefined, 'keep', 1, 10)).toBeUndefined();
    for (const bad of ['0', '11', '2.5', '-1', 'x', '']) {
      expect(() => integerOption(bad, 'keep', 1, 10)).toThrow(
        `--keep must be an integer between 1 and 10 (got ${JSON.stringify(bad)})`,
      );
    }
  });

  it('help lists every option and the details', () => {
    const text = helpText(spec);
    expect(text).toContain('Usage: npm run ops -- demo [options]');
    expect(text).toMatch(/--keep N\s+How many to keep\./);
    expect(text).toMatch(/--wait\s+Wait for it\./);
    expect(text).toMatch(/--help\s+Show this help\./);
    expect(text).toContain('More words.');
  });
});

describe('consoleReporter', () => {
  it(
    'in logs: plain progress lines at most every few seconds, messages on stderr, the summary as one JSON ' +
      'line on stdout',
    () => {
      const { reporter, out, err, tick } = capture(false);
      const progress = reporter.progress('images', 100);
      for (let i = 0; i < 10; i++) {
        tick(1000);
        progress.advance(5);
      }
      progress.done();
      reporter.warn('careful');
      reporter.summary({ what: 'demo', size: 1 });
      expect(err).toEqual([
        'images: 0/100 (0%)\n',
        'images: 25/100 (25%), ETA 15s\n',
        'images: 50/100 (50%), ETA 10s\n',
        'images: 50/100 (50%), done in 10s\n',
        'warning: careful\n',
      ]);
      expect(out).toEqual(['{"what":"demo","size":1}\n']);
    },
  );

  it('on a terminal: one redrawn bar with counts and ETA, cleared before other output', () => {
    const { reporter, err, tick } = capture(true);
    const progress = reporter.progress('re-embedding', 40);
    tick(200);
    progress.advance(10);
    reporter.info('hello');
    tick(200);
    progress.advance(10);
    progress.done();
    expect(err).toEqual([
      '\r\x1b[Kre-embedding [######..................] 10/40 25% ETA 1s',
      '\r\x1b[K',
      'hello\n',
      '\r\x1b[Kre-embedding [############............] 20/40 50% ETA 0s',
      '\r\x1b[Kre-embedding [############............] 20/40 50% in 0s',
      '\n',
    ]);
  });

  it('formats durations for people', () => {
    expect(formatDuration(999)).toBe('1s');
    expect(formatDuration(125_000)).toBe('2m05s');
    expect(formatDuration(3 * 3600_000 + 60_000)).toBe('3h01m');
  });
});
