import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { hasCommand, runScript } from './run-script.js';

describe('install-backup-timer.sh', () => {
  let dir: string;
  let units: string;
  let calls: string;
  let systemctl: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'timer-'));
    units = path.join(dir, 'units');
    calls = path.join(dir, 'calls');
    // Records what systemd would be told; the real one must not be touched by a test.
    systemctl = path.join(dir, 'systemctl');
    writeFileSync(systemctl, `#!/bin/bash\necho "$*" >> '${calls}'\n`, { mode: 0o755 });
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const install = (schedule: string) =>
    runScript('install-backup-timer.sh', [schedule, '/opt/erp-image-search/app', units], { SYSTEMCTL: systemctl });
  const recorded = () => {
    try {
      return readFileSync(calls, 'utf8').trim().split('\n');
    } catch {
      return [];
    }
  };

  it('writes a timer with the schedule and a service that runs the backup in the api container', () => {
    const run = install('*-*-* 02:30:00');
    expect(run.status, run.stderr).toBe(0);
    const timer = readFileSync(path.join(units, 'erp-image-search-backup.timer'), 'utf8');
    const service = readFileSync(path.join(units, 'erp-image-search-backup.service'), 'utf8');
    expect(timer).toContain('\nOnCalendar=*-*-* 02:30:00\n');
    expect(timer).toContain('\nPersistent=true\n');
    expect(timer).toContain('\nWantedBy=timers.target\n');
    expect(service).toMatch(
      /\nExecStart=\S*docker compose --project-directory \/opt\/erp-image-search\/app exec -T api node dist\/scripts\/ops\.js backup\n/,
    );
    expect(service).toContain('\nRequiresMountsFor=/data\n');
    expect(service).toContain('\nType=oneshot\n');
    expect((statSync(path.join(units, 'erp-image-search-backup.timer')).mode & 0o777).toString(8)).toBe('644');
    expect(recorded()).toEqual(['daemon-reload', 'enable --now erp-image-search-backup.timer']);
  });

  it('is idempotent, and a new schedule replaces the old one', () => {
    expect(install('*-*-* 02:30:00').status).toBe(0);
    expect(install('*-*-* 02:30:00').status).toBe(0);
    expect(recorded()).toEqual([
      'daemon-reload',
      'enable --now erp-image-search-backup.timer',
      'enable --now erp-image-search-backup.timer',
    ]);
    expect(install('Sun *-*-* 04:00:00').status).toBe(0);
    expect(readFileSync(path.join(units, 'erp-image-search-backup.timer'), 'utf8')).toContain(
      '\nOnCalendar=Sun *-*-* 04:00:00\n',
    );
    expect(recorded().filter((call) => call === 'daemon-reload')).toHaveLength(2);
  });

  it('refuses schedules that could inject unit settings', () => {
    for (const bad of ['daily\nExecStartPre=/bin/sh', '%h', '']) {
      const run = install(bad);
      expect(run.status, bad).not.toBe(0);
    }
    expect(recorded()).toEqual([]);
  });

  it.skipIf(!hasCommand('systemd-analyze'))('refuses what systemd does not accept as a calendar expression', () => {
    const run = install('*-*-* 25:99:00');
    expect(run.status).toBe(1);
    expect(run.stderr).toContain('does not accept');
  });
  if (!hasCommand('systemd-analyze'))
    console.log('install-backup-timer: systemd-analyze missing, calendar validation test skipped');
});
