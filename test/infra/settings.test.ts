// The deployment's settings file: what a synthesis saves, what the next one reuses, what it refuses and what
// it announces. resolveSettings is exercised directly (as `cdk synth -c ...` would feed it) and through the app.
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError } from '../../infra/config.js';
import { DEFAULT_SETTINGS_FILE, resolveSettings, type Settings } from '../../infra/settings.js';
import { synth } from './synth.js';

const ERP = '203.0.113.10/32';
const CLERKS = '198.51.100.0/24';

describe('deployment settings file', () => {
  let dir: string;
  let file: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'settings-'));
    file = path.join(dir, 'deployment.json');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** One `cdk synth` with these -c values, saved afterwards like infra/app.ts does. */
  const run = async (context: Record<string, unknown> = {}): Promise<Settings> => {
    const settings = resolveSettings((key) => ({ settingsFile: file, ...context })[key], dir);
    await settings.save();
    return settings;
  };
  const saved = () => JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
  const refusal = (context: Record<string, unknown>) => {
    try {
      resolveSettings((key) => ({ settingsFile: file, ...context })[key], dir);
    } catch (error) {
      expect(error).toBeInstanceOf(ConfigError);
      return (error as Error).message;
    }
    throw new Error('expected a ConfigError');
  };

  it('saves the given settings and the identity of the deployment, and a redeploy without -c reuses them', async () => {
    const first = await run({ allowedCidr: `${ERP},${CLERKS}`, availabilityZone: 'eu-west-1b', dataVolumeGiB: '40' });
    expect(first.changed).toEqual(['stackName', 'availabilityZone', 'allowedCidr', 'dataVolumeGiB']);
    expect(saved()).toEqual({
      stackName: 'ErpImageSearch',
      availabilityZone: 'eu-west-1b',
      allowedCidr: [ERP, CLERKS],
      dataVolumeGiB: 40,
    });
    const again = await run();
    expect(again.config).toMatchObject({ availabilityZone: 'eu-west-1b', region: 'eu-west-1', dataVolumeGiB: 40 });
    expect(again.config.allowedCidr).toEqual([ERP, CLERKS]);
    expect(again.changed).toEqual([]);
    expect(again.closing).toEqual([]);
    expect(readdirSync(dir)).toEqual(['deployment.json']); // written atomically: no temporary file stays
  });

  it('the default file is deployment.json in the repository root; -c settingsFile picks another', () => {
    const settings = resolveSettings(() => undefined, dir);
    expect(settings.file).toBe(path.join(dir, DEFAULT_SETTINGS_FILE));
    expect(resolveSettings((key) => (key === 'settingsFile' ? 'deploy/prod.json' : undefined), dir).file).toBe(
      path.join(dir, 'deploy/prod.json'),
    );
  });

  it('-c overrides a saved setting and is saved in its place; -c key= drops it', async () => {
    await run({ allowedCidr: ERP, alarmEmail: 'ops@example.com' });
    expect((await run({ alarmEmail: 'oncall@example.com' })).changed).toEqual(['alarmEmail']);
    expect(saved().alarmEmail).toBe('oncall@example.com');
    const dropped = await run({ alarmEmail: '' });
    expect(dropped.changed).toEqual(['alarmEmail']);
    expect(dropped.config.alarmEmail).toBeUndefined();
    expect(saved()).not.toHaveProperty('alarmEmail');
    expect(saved().allowedCidr).toEqual([ERP]);
  });

  it('refuses a redeploy that would move the data volume to another zone, and says what to do', async () => {
    await run({ allowedCidr: ERP, availabilityZone: 'eu-central-1a' });
    const message = refusal({ availabilityZone: 'eu-central-1b' });
    expect(message).toContain(
      "availabilityZone: this deployment's data volume lives in eu-central-1a and cannot move to eu-central-1b",
    );
    expect(message).toContain('Drop -c availabilityZone to keep eu-central-1a');
    expect(message).toContain('-c settingsFile=deployment-<name>.json');
    expect(message).toContain(`If nothing was ever deployed with ${file}, delete that file`);
    expect(saved().availabilityZone).toBe('eu-central-1a'); // nothing written
    expect(refusal({ stackName: 'Other' })).toContain('stackName: this deployment is the stack ErpImageSearch');
  });

  it('warns loudly when a change closes the API to networks that reached it', async () => {
    await run({ allowedCidr: `${ERP},${CLERKS}` });
    const narrowed = await run({ allowedCidr: ERP });
    expect(narrowed.closing).toEqual([
      `The API port CLOSES for ${CLERKS} (was allowed by the saved allowedCidr): ERPNext or clerks there lose ` +
        `access. If that is not what you want, deploy with -c allowedCidr=${ERP},${CLERKS} instead.`,
    ]);
    const emptied = await run({ allowedCidr: '' });
    expect(emptied.closing).toEqual([expect.stringContaining(`The API port CLOSES for ${ERP}`)]);
    expect(emptied.config.warnings).toContain(
      'allowedCidr is not set: port 8020 stays closed. Deploy with -c allowedCidr=<ERPNext address>/32 ' +
        "(and the clerks' networks) to let ERPNext in.",
    );
    // Widening, or a first deploy, closes nothing.
    expect((await run({ allowedCidr: `${ERP},${CLERKS}` })).closing).toEqual([]);
  });

  it('warns that 8020 closes when HTTPS takes over, naming the new address', async () => {
    await run({ allowedCidr: ERP });
    const tls = await run({ domainName: 'api.example.com', hostedZoneId: 'Z123' });
    expect(tls.closing).toEqual([
      `Port 8020 CLOSES for ${ERP}: the API moves to https://api.example.com (443). Point ERPNext (its API URL and ` +
        'webhook) at the new https address as soon as the deploy finishes.',
    ]);
    expect(tls.config.allowedCidr).toEqual([ERP]); // 443 is open to the same networks
  });

  it('reports a broken settings file with its path and what to do', () => {
    writeFileSync(file, '{"allowedCidr": ');
    expect(refusal({})).toMatch(/deployment\.json is not valid JSON .*; fix it or restore it from git/);
    writeFileSync(file, '["203.0.113.10/32"]');
    expect(refusal({})).toContain('must hold a JSON object of settings');
    writeFileSync(file, '{"allowedCIDR": ["203.0.113.10/32"]}');
    expect(refusal({})).toContain('has unknown settings: allowedCIDR. Remove them');
    writeFileSync(file, '{"allowedCidr": ["203.0.113.10/24"]}');
    expect(refusal({})).toMatch(/did you mean 203\.0\.113\.0\/24[\s\S]*\(settings: .*deployment\.json overridden/);
  });

  it('the app saves only after a synthesis that passed its checks, and the stack carries the warnings', async () => {
    const first = synth({ settingsFile: file, allowedCidr: `${ERP},${CLERKS}` });
    first.cleanup();
    expect(() => readFileSync(file)).toThrow(); // synthesized, but not saved yet (infra/app.ts saves after synth)
    await first.settings.save();
    const second = synth({ settingsFile: file, allowedCidr: ERP });
    try {
      const warnings = second.assembly
        .getStackByName('ErpImageSearch')
        .messages.filter((m) => String(m.level) === 'warning')
        .map((m) => JSON.stringify(m.entry.data));
      expect(warnings.some((w) => w.includes(`The API port CLOSES for ${CLERKS}`))).toBe(true);
      expect(warnings.some((w) => w.includes('TLS is off'))).toBe(true);
    } finally {
      second.cleanup();
    }
  });
});
