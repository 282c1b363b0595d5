// The README's table of deployment settings (between the cdk-settings markers) lists every setting of
// infra/config.ts with its default, and nothing else.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FIELDS } from '../../infra/config.js';
import { ROOT } from './synth.js';

const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
const table = readme.slice(readme.indexOf('<!-- cdk-settings:start -->'), readme.indexOf('<!-- cdk-settings:end -->'));
const rows = Object.fromEntries(
  [...table.matchAll(/^\| `(\w+)` \| (.+?) \| (.+) \|$/gm)].map(([, key, fallback, meaning]) => [
    key,
    { fallback, meaning },
  ]),
);

describe('README: deployment settings table', () => {
  it('lists every setting exactly once, in the order of infra/config.ts', () => {
    expect(Object.keys(rows)).toEqual(Object.keys(FIELDS));
  });

  it.each(Object.entries(FIELDS))('%s: documented default and variable', (key, field) => {
    const value = 'default' in field ? field.default : undefined;
    const shown = value === undefined || (Array.isArray(value) && !value.length) ? '—' : `\`${String(value)}\``;
    expect(rows[key].fallback).toBe(shown);
    if ('env' in field) expect(rows[key].meaning).toContain(`→ \`${field.env.name}\``);
  });
});
