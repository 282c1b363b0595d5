// A real small file system for disk-full tests: a tmpfs of a given size mounted on a temp directory, which
// the test can grow (remount) to show recovery without a restart. Needs root and mount(8); where they are
// missing, `tmpfsUnavailable` says why and the tests skip with that reason printed.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';

function probe(): string | undefined {
  if (process.getuid?.() !== 0) return 'needs root to mount a tmpfs';
  const dir = mkdtempSync(path.join(tmpdir(), 'tmpfs-probe-'));
  try {
    const mounted = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', dir], { encoding: 'utf8' });
    if (mounted.status !== 0)
      return `mount -t tmpfs failed: ${(mounted.stderr || mounted.error?.message || '').trim()}`;
    spawnSync('umount', [dir]);
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

export const tmpfsUnavailable = probe();
if (tmpfsUnavailable) console.log(`SKIPPED disk-full tests: ${tmpfsUnavailable}`);

export interface Tmpfs {
  dir: string;
  /** Changes the size limit (KiB), e.g. to free space. */
  resize(kib: number): void;
  unmount(): void;
}

export function mountTmpfs(kib: number): Tmpfs {
  const dir = mkdtempSync(path.join(tmpdir(), 'tmpfs-'));
  execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kib}k,mode=0755`, 'tmpfs', dir]);
  return {
    dir,
    resize: (size) => execFileSync('mount', ['-o', `remount,size=${size}k`, dir]),
    unmount: () => {
      spawnSync('umount', ['-l', dir]);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
