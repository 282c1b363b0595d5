// Shared bits of the operations CLI: option parsing with clear errors and --help text, the two kinds of
// failure (a usage mistake, exit 2; an operation that could not be done, exit 1), and reporting:
// messages and progress on stderr (a redrawn bar with counts and ETA on a terminal, plain lines in logs)
// and one JSON summary line on stdout for log collectors.
import { parseArgs } from 'node:util';

/** The command line was wrong: the message says what to change. Exit code 2. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/** The operation could not be done: the message says why and what to do. Exit code 1. */
export class OpsError extends Error {
  override name = 'OpsError';
}

export interface OptionSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in help for string options, e.g. PATH. */
  placeholder?: string;
}

export interface CommandSpec {
  name: string;
  summary: string;
  /** Paragraphs printed under the options. */
  details?: string;
  options: Record<string, OptionSpec>;
}

export type ParsedOptions = Record<string, string | boolean | undefined>;

/** Parses argv (after the command name) strictly: unknown flags, missing values and stray arguments fail. */
export function parseOptions(spec: CommandSpec, argv: string[]): ParsedOptions {
  const options = Object.fromEntries(
    Object.entries({ ...spec.options, help: { type: 'boolean' as const, description: '' } }).map(([name, option]) => [
      name,
      { type: option.type },
    ]),
  );
  try {
    const { values, positionals } = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
    if (positionals.length > 0) throw new UsageError(`unexpected argument ${JSON.stringify(positionals[0])}`);
    return values;
  } catch (error) {
    if (error instanceof UsageError) throw error;
    // node's messages are clear but long ("Unknown option '--x'. To specify a positional argument..."):
    // keep the first sentence.
    const message = (error as Error).message.split(/\.\s/)[0].replace(/\.$/, '');
    throw new UsageError(message);
  }
}

export function helpText(spec: CommandSpec): string {
  const rows = Object.entries(spec.options).map(([name, option]) => {
    const flag = option.type === 'string' ? `--${name} ${option.placeholder ?? 'VALUE'}` : `--${name}`;
    return [flag, option.description] as const;
  });
  rows.push(['--help', 'Show this help.']);
  const width = Math.max(...rows.map(([flag]) => flag.length));
  const lines = [`Usage: npm run ops -- ${spec.name} [options]`, '', spec.summary, '', 'Options:'];
  for (const [flag, description] of rows) lines.push(`  ${flag.padEnd(width)}  ${description}`);
  if (spec.details) lines.push('', spec.details);
  return `${lines.join('\n')}\n`;
}

export function integerOption(
  value: string | boolean | undefined,
  name: string,
  min: number,
  max: number,
): number | undefined {
  if (value === undefined) return undefined;
  const number = Number(value);
  if (
    typeof value !== 'string' ||
    !/^\d+$/.test(value) ||
    !Number.isSafeInteger(number) ||
    number < min ||
    number > max
  ) {
    throw new UsageError(`--${name} must be an integer between ${min} and ${max} (got ${JSON.stringify(value)})`);
  }
  return number;
}

export const stringOption = (value: string | boolean | undefined): string | undefined =>
  typeof value === 'string' ? value : undefined;

// ---- reporting ----

export interface Progress {
  /** Counts `n` more units of work as done. */
  advance(n?: number): void;
  /** Prints the final state; further calls do nothing. */
  done(): void;
}

export interface Reporter {
  info(message: string): void;
  warn(message: string): void;
  progress(label: string, total: number): Progress;
  /** The one-line JSON summary of a finished command. */
  summary(fields: object): void;
}

export interface ConsoleReporterOptions {
  stdout: { write(text: string): unknown };
  stderr: { write(text: string): unknown; isTTY?: boolean; columns?: number };
  now?: () => number;
  /** Plain (non-TTY) progress lines at most this often (default 5 s). */
  lineEveryMs?: number;
}

export function formatDuration(ms: number): string {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds}s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes}m${String(seconds % 60).padStart(2, '0')}s`;
  return `${Math.floor(minutes / 60)}h${String(minutes % 60).padStart(2, '0')}m`;
}

export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Reporter for a real process: a redrawn bar on a terminal, plain lines otherwise. */
export function consoleReporter(options: ConsoleReporterOptions): Reporter {
  const { stdout, stderr } = options;
  const now = options.now ?? Date.now;
  const tty = stderr.isTTY === true;
  let activeBar = false;
  const clearBar = () => {
    if (activeBar) stderr.write('\r\x1b[K');
    activeBar = false;
  };
  return {
    info(message) {
      clearBar();
      stderr.write(`${message}\n`);
    },
    warn(message) {
      clearBar();
      stderr.write(`warning: ${message}\n`);
    },
    summary(fields) {
      clearBar();
      stdout.write(`${JSON.stringify(fields)}\n`);
    },
    progress(label, initialTotal) {
      const started = now();
      let total = initialTotal;
      let count = 0;
      let lastDraw = 0;
      let finished = false;
      const describe = () => {
        const elapsed = now() - started;
        const percent = total > 0 ? Math.min(100, Math.floor((count / total) * 100)) : 100;
        const eta = count > 0 && count < total ? formatDuration((elapsed / count) * (total - count)) : undefined;
        return { percent, elapsed, eta };
      };
      const draw = (final: boolean) => {
        const { percent, elapsed, eta } = describe();
        if (tty) {
          const width = 24;
          const filled = Math.round((percent / 100) * width);
          const tail = final ? `in ${formatDuration(elapsed)}` : eta ? `ETA ${eta}` : '';
          const line =
            `${label} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${count}/${total} ` + `${percent}% ${tail}`;
          stderr.write(`\r\x1b[K${line.slice(0, (stderr.columns ?? 200) - 1)}`);
          activeBar = !final;
          if (final) stderr.write('\n');
        } else {
          const tail = final ? `done in ${formatDuration(elapsed)}` : eta ? `ETA ${eta}` : '';
          stderr.write(`${label}: ${count}/${total} (${percent}%)${tail ? `, ${tail}` : ''}\n`);
        }
        lastDraw = now();
      };
      const every = tty ? 100 : (options.lineEveryMs ?? 5000);
      if (!tty) draw(false);
      return {
        advance(n = 1) {
          if (finished) return;
          count += n;
          if (count > total) total = count;
          if (now() - lastDraw >= every) draw(false);
        },
        done() {
          if (finished) return;
          finished = true;
          draw(true);
        },
      };
    },
  };
}
