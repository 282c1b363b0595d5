// The frame of every developer tool in scripts/dev (benchmarks, soaks, evaluations): `--help` prints the
// usage, a wrong flag prints one line and the usage (exit 2), a failure prints its message without a stack
// trace (exit 1). Developer tools are not part of the production image.
export class ToolUsageError extends Error {
  override name = 'ToolUsageError';
}

export function numberFlag(raw: string | undefined, name: string, min = 1): number {
  const value = Number(raw);
  if (!Number.isInteger(value) || value < min) {
    throw new ToolUsageError(`--${name} must be a whole number of at least ${min} (got ${JSON.stringify(raw)})`);
  }
  return value;
}

export async function runTool(help: string, main: () => Promise<void>): Promise<void> {
  if (process.argv.includes('--help') || process.argv.includes('-h')) {
    console.log(help);
    return;
  }
  try {
    await main();
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (error instanceof ToolUsageError || code?.startsWith('ERR_PARSE_ARGS')) {
      // node's parseArgs messages are long ("... To specify a positional argument ..."): keep the first sentence.
      console.error(`${(error as Error).message.split('. ')[0]}\n\n${help}`);
      process.exitCode = 2;
    } else {
      console.error(`failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  }
}
