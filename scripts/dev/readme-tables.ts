// Developer tool: writes the README's configuration table and error table from their one source
// (service/src/config.ts VARIABLES, service/src/errors.ts ERROR_CODES), between the
// <!-- config-table --> and <!-- error-table --> markers. `npm run docs:tables`; tests fail when the
// README no longer matches.
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { VARIABLES } from '../../service/src/config.js';
import { ERROR_CODES } from '../../service/src/errors.js';

export const README_PATH = fileURLToPath(new URL('../../README.md', import.meta.url));

const cell = (text: string) => text.replace(/\|/g, '\\|');

export function configTable(): string {
  const rows = Object.values(VARIABLES).map((variable) => {
    const fallback =
      'default' in variable && variable.default !== undefined && variable.default !== ''
        ? `\`${variable.default}\``
        : '—';
    return `| \`${variable.env}\` | ${fallback} | ${cell(variable.doc)} |`;
  });
  return ['| Variable | Default | Meaning |', '|---|---|---|', ...rows].join('\n');
}

export function errorTable(): string {
  const rows = Object.entries(ERROR_CODES)
    .sort(([, a], [, b]) => a[0] - b[0])
    .map(([code, [status, meaning]]) => `| ${status} | \`${code}\` | ${cell(meaning)} |`);
  return ['| Status | `error` | Meaning |', '|---|---|---|', ...rows].join('\n');
}

export function withTables(readme: string): string {
  const replace = (text: string, name: string, table: string) => {
    const pattern = new RegExp(`(<!-- ${name}:start -->)[\\s\\S]*?(<!-- ${name}:end -->)`);
    if (!pattern.test(text))
      throw new Error(`README.md has no <!-- ${name}:start --> ... <!-- ${name}:end --> markers`);
    return text.replace(pattern, (_, start: string, end: string) => `${start}\n${table}\n${end}`);
  };
  return replace(replace(readme, 'config-table', configTable()), 'error-table', errorTable());
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  writeFileSync(README_PATH, withTables(readFileSync(README_PATH, 'utf8')));
  console.log('README.md tables written');
}
