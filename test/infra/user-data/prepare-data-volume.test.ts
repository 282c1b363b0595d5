// prepare-data-volume.sh for real: loop devices, mkfs, mount, a temporary fstab. Needs root and loop devices
// (.ci/run has both on CI's machine); skips with the reason otherwise. Every loop device and mount made here
// is released in afterEach, also when a test fails.
import {
  appendFileSync,
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  rmSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { hasCommand, isRoot, runScript, sh } from './run-script.js';

const missing = ['losetup', 'mkfs.ext4', 'blkid', 'mount', 'umount', 'mountpoint', 'resize2fs'].filter(
  (tool) => !hasCommand(tool),
);
const reason = !isRoot()
  ? 'not running as root'
  : missing.length
    ? `missing ${missing.join(', ')}`
    : !existsSync('/dev/loop-control')
      ? 'no /dev/loop-control (loop devices unavailable)'
      : '';
if (reason)
  console.log(`prepare-data-volume tests skipped: ${reason}; they need root, loop devices and e2fsprogs/util-linux`);

describe.skipIf(Boolean(reason))('prepare-data-volume.sh on a loop device', () => {
  let work: string;
  const loops: string[] = [];
  const mounts: string[] = [];

  beforeAll(() => {
    // A sandbox may list loop devices yet refuse to set them up: find out before the tests do.
    const dir = mkdtempSync(path.join(tmpdir(), 'pdv-probe-'));
    try {
      writeFileSync(path.join(dir, 'img'), Buffer.alloc(1024 * 1024));
      sh('losetup', ['-d', sh('losetup', ['--find', '--show', path.join(dir, 'img')])]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  afterEach(() => {
    for (const mount of mounts.splice(0).reverse()) {
      try {
        sh('umount', [mount]);
      } catch {
        try {
          sh('umount', ['-l', mount]);
        } catch {
          /* not mounted */
        }
      }
    }
    for (const loop of loops.splice(0)) {
      try {
        sh('losetup', ['-d', loop]);
      } catch {
        /* already gone */
      }
    }
    rmSync(work, { recursive: true, force: true });
  });

  const setup = (sizeMiB = 64) => {
    work = mkdtempSync(path.join(tmpdir(), 'pdv-'));
    const image = path.join(work, 'disk.img');
    sh('truncate', ['-s', `${sizeMiB}M`, image]);
    const device = sh('losetup', ['--find', '--show', image]);
    loops.push(device);
    const mountPoint = path.join(work, 'data');
    mounts.push(mountPoint);
    const fstab = path.join(work, 'fstab');
    writeFileSync(
      fstab,
      '# static file system information\nUUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1\n',
    );
    return { image, device, mountPoint, fstab };
  };
  const prepare = (device: string, mountPoint: string, fstab: string) =>
    runScript('prepare-data-volume.sh', [device, mountPoint, fstab]);
  const uuidOf = (device: string) => sh('blkid', ['-p', '-s', 'UUID', '-o', 'value', device]);
  const isMounted = (mountPoint: string) => {
    try {
      sh('mountpoint', ['-q', mountPoint]);
      return true;
    } catch {
      return false;
    }
  };
  const entriesFor = (fstab: string, mountPoint: string) =>
    readFileSync(fstab, 'utf8')
      .split('\n')
      .filter((line) => !line.startsWith('#') && line.split(/\s+/)[1] === mountPoint);

  it('formats a blank device, mounts it and adds one fstab entry by UUID with nofail', () => {
    const { device, mountPoint, fstab } = setup();
    const run = prepare(device, mountPoint, fstab);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('creating ext4');
    expect(sh('blkid', ['-p', '-s', 'TYPE', '-o', 'value', device])).toBe('ext4');
    expect(isMounted(mountPoint)).toBe(true);
    const uuid = uuidOf(device);
    expect(entriesFor(fstab, mountPoint)).toEqual([`UUID=${uuid} ${mountPoint} ext4 defaults,nofail 0 2`]);
    // The machine's other entries stay as they were.
    expect(readFileSync(fstab, 'utf8')).toContain('UUID=11111111-2222-3333-4444-555555555555 / ext4 defaults 0 1');
  });

  it('never reformats on later runs: a written file survives, mounted or not, and fstab keeps one entry', () => {
    const { device, mountPoint, fstab } = setup();
    expect(prepare(device, mountPoint, fstab).status).toBe(0);
    const uuid = uuidOf(device);
    writeFileSync(path.join(mountPoint, 'kept.txt'), 'precious');

    const second = prepare(device, mountPoint, fstab); // still mounted
    expect(second.status, second.stderr).toBe(0);
    expect(second.stderr).not.toContain('creating ext4');
    expect(second.stderr).toContain('already mounted');

    sh('umount', [mountPoint]); // as after a reboot
    const third = prepare(device, mountPoint, fstab);
    expect(third.status, third.stderr).toBe(0);
    expect(third.stderr).not.toContain('creating ext4');
    expect(uuidOf(device)).toBe(uuid);
    expect(readFileSync(path.join(mountPoint, 'kept.txt'), 'utf8')).toBe('precious');
    expect(entriesFor(fstab, mountPoint)).toEqual([`UUID=${uuid} ${mountPoint} ext4 defaults,nofail 0 2`]);
  });

  it('mounts a device that already holds a filesystem with data, never formatting it', () => {
    const { device, mountPoint, fstab } = setup();
    const content = path.join(work, 'content');
    mkdirSync(path.join(content, 'qdrant'), { recursive: true });
    writeFileSync(path.join(content, 'qdrant', 'segment.dat'), 'vectors');
    sh('mkfs.ext4', ['-q', '-d', content, device]); // a volume restored from a snapshot, say
    const uuid = uuidOf(device);
    const run = prepare(device, mountPoint, fstab);
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).not.toContain('creating ext4');
    expect(uuidOf(device)).toBe(uuid);
    expect(readFileSync(path.join(mountPoint, 'qdrant', 'segment.dat'), 'utf8')).toBe('vectors');
  });

  it('replaces a stale entry for the mount point instead of adding a second one', () => {
    const { device, mountPoint, fstab } = setup();
    appendFileSync(fstab, `UUID=deadbeef-0000-0000-0000-000000000000 ${mountPoint} xfs defaults 0 2\n`);
    expect(prepare(device, mountPoint, fstab).status).toBe(0);
    expect(entriesFor(fstab, mountPoint)).toEqual([`UUID=${uuidOf(device)} ${mountPoint} ext4 defaults,nofail 0 2`]);
  });

  it('grows the filesystem after the volume was enlarged', (ctx) => {
    const { image, device, mountPoint, fstab } = setup(64);
    expect(prepare(device, mountPoint, fstab).status).toBe(0);
    const sizeOf = () => Number(sh('df', ['--output=size', '-B1M', mountPoint]).split('\n')[1]);
    const before = sizeOf();
    sh('truncate', ['-s', '128M', image]);
    sh('losetup', ['-c', device]);
    const run = prepare(device, mountPoint, fstab);
    expect(run.status, run.stderr).toBe(0); // a failed resize is a warning, never a failed boot
    if (run.stderr.includes('warning: resize2fs')) {
      const direct = spawnSync('resize2fs', [device], { encoding: 'utf8' });
      if (/Permission denied|Operation not permitted/.test(direct.stderr)) {
        console.log(
          'online resize skipped: this sandbox forbids resizing a mounted ext4 (resize2fs: permission denied)',
        );
        ctx.skip();
      }
    }
    expect(sizeOf()).toBeGreaterThan(before + 50);
  });

  it('refuses a device with a partition table and leaves it untouched', () => {
    const { image, device, mountPoint, fstab } = setup();
    // An MBR with one Linux partition: blkid reports PTTYPE=dos and no filesystem.
    const mbr = Buffer.alloc(512);
    mbr.set([0x00, 0x20, 0x21, 0x00, 0x83, 0xfe, 0xff, 0xff], 446);
    mbr.writeUInt32LE(2048, 454);
    mbr.writeUInt32LE(64 * 2048 - 2048, 458);
    mbr.set([0x55, 0xaa], 510);
    const fd = openSync(image, 'r+');
    writeSync(fd, mbr, 0, 512, 0);
    closeSync(fd);
    const before = readFileSync(fstab, 'utf8');
    const run = prepare(device, mountPoint, fstab);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('refusing to format or mount');
    expect(sh('blkid', ['-p', '-o', 'export', device])).toContain('PTTYPE=dos');
    expect(readFileSync(fstab, 'utf8')).toBe(before);
    expect(isMounted(mountPoint)).toBe(false);
  });

  it('refuses to mount over another filesystem already mounted at the mount point', () => {
    const first = setup();
    expect(prepare(first.device, first.mountPoint, first.fstab).status).toBe(0);
    const otherImage = path.join(work, 'other.img');
    sh('truncate', ['-s', '64M', otherImage]);
    const other = sh('losetup', ['--find', '--show', otherImage]);
    loops.push(other);
    const run = prepare(other, first.mountPoint, first.fstab);
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('already a mount point of another device');
  });

  it('checks its arguments', () => {
    work = mkdtempSync(path.join(tmpdir(), 'pdv-'));
    expect(runScript('prepare-data-volume.sh', ['/dev/null']).status).toBe(2);
    expect(runScript('prepare-data-volume.sh', [path.join(work, 'nothing'), '/mnt/x']).stderr).toContain(
      'is not a block device',
    );
  });
});
