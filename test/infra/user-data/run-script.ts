// Runs one of infra/user-data/*.sh for real with bash.
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { ROOT } from '../synth.js';

export const SCRIPTS = path.join(ROOT, 'infra/user-data');

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function runScript(name: string, args: string[], env: NodeJS.ProcessEnv = {}): Run {
  const result = spawnSync('bash', [path.join(SCRIPTS, name), ...args], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
    timeout: 60_000,
  });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

export const sh = (command: string, args: string[]) => execFileSync(command, args, { encoding: 'utf8' }).trim();

export const hasCommand = (name: string) =>
  spawnSync('bash', ['-c', `command -v ${name}`], { stdio: 'ignore' }).status === 0;

export const isRoot = () => process.getuid?.() === 0;
