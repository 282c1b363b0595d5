// A deployment's settings survive a redeploy: every synthesis (synth, diff, deploy) reads the settings file
// (default deployment.json beside cdk.json), lets `-c key=value` override it, and after a successful
// synthesis saves the result back. So `-c allowedCidr=...` is given once, and a later plain `cdk deploy`
// neither closes the port nor lands in the default zone. `-c key=` (empty) drops a saved setting.
// The zone and the stack name identify the data volume: once saved, a change is refused instead of silently
// deploying an empty volume elsewhere. A change that closes the API to a network it reached is announced loudly.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { writeJsonAtomic } from '../service/src/lib/files.js';
import { apiExposure, ConfigError, FIELDS, loadConfig, type DeployConfig, type FieldName } from './config.js';

/** The repository root (cdk.json's directory): relative settings paths start here. */
export const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DEFAULT_SETTINGS_FILE = 'deployment.json';
/** Context key that names another settings file (one file per deployment). Not itself saved. */
export const SETTINGS_FILE_KEY = 'settingsFile';
/** Saved on the first synthesis even when not given: they decide which stack and volume a deploy targets. */
const IDENTITY: FieldName[] = ['stackName', 'availabilityZone'];

type Values = Partial<Record<FieldName, unknown>>;

export interface Settings {
  /** Absolute path of the settings file. */
  file: string;
  config: DeployConfig;
  /** Setting names whose saved value this synthesis adds, changes or drops. */
  changed: FieldName[];
  /** What closes for networks that reached the API with the saved settings (loud warnings). */
  closing: string[];
  /** Writes the settings (atomically); call only after the synthesis succeeded. */
  save(): Promise<void>;
}

const isField = (key: string): key is FieldName => Object.hasOwn(FIELDS, key);

function readSaved(file: string): Values {
  if (!existsSync(file)) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'));
  } catch (error) {
    throw new ConfigError(`${file} is not valid JSON (${(error as Error).message}); fix it or restore it from git.`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new ConfigError(`${file} must hold a JSON object of settings such as {"allowedCidr": ["203.0.113.10/32"]}.`);
  }
  const unknown = Object.keys(parsed).filter((key) => !isField(key));
  if (unknown.length) {
    throw new ConfigError(
      `${file} has unknown settings: ${unknown.join(', ')}. Remove them (known: ${Object.keys(FIELDS).join(', ')}).`,
    );
  }
  return parsed;
}

/** The canonical, JSON-friendly value of every setting that is set, plus the identity settings. */
function toSave(merged: Values, config: DeployConfig): Values {
  const out: Values = {};
  for (const key of Object.keys(FIELDS) as FieldName[]) {
    if (key in merged || IDENTITY.includes(key)) out[key] = config[key];
  }
  return out;
}

function refuseIdentityChange(saved: Values, config: DeployConfig, file: string) {
  for (const key of IDENTITY) {
    const was = saved[key] as string | undefined;
    if (was === undefined || was === config[key]) continue;
    const what =
      key === 'availabilityZone'
        ? `this deployment's data volume lives in ${was} and cannot move to ${config[key]}: ` +
          'deploying there would create a new, empty volume and instance'
        : `this deployment is the stack ${was}; a new name would create a second stack with a new, empty data volume`;
    throw new ConfigError(
      `${key}: ${what}. Drop -c ${key} to keep ${was}. For a separate deployment use its own ` +
        `settings file: -c ${SETTINGS_FILE_KEY}=deployment-<name>.json -c stackName=<Name> -c ${key}=... ` +
        `If nothing was ever deployed with ${file}, delete that file and run again.`,
    );
  }
}

/** The configuration the saved settings alone give (the one deployed last), or none when a hand edit broke it. */
function savedConfig(saved: Values): DeployConfig | undefined {
  try {
    return loadConfig((key) => saved[key as FieldName]);
  } catch {
    return undefined; // the merged configuration reported (or overrode) the broken value already
  }
}

function closingMessages(previous: DeployConfig | undefined, config: DeployConfig): string[] {
  if (!previous) return [];
  const now = new Set(apiExposure(config));
  const lost = apiExposure(previous).filter((way) => !now.has(way));
  if (!lost.length) return [];
  if (!previous.tls && config.tls) {
    return [
      `Port 8020 CLOSES for ${previous.allowedCidr.join(', ')}: the API moves to https://${config.tls.domainName} ` +
        '(443). Point ERPNext (its API URL and webhook) at the new https address as soon as the deploy finishes.',
    ];
  }
  return [
    `The API port CLOSES for ${lost.map((way) => way.replace(/^\d+ from /, '')).join(', ')} (was allowed by the ` +
      'saved allowedCidr): ERPNext or clerks there lose access. If that is not what you want, deploy with ' +
      `-c allowedCidr=${previous.allowedCidr.join(',')} instead.`,
  ];
}

/**
 * Merges the saved settings and the context (`lookup`, usually app.node.tryGetContext) into the deployment's
 * configuration. Throws ConfigError for invalid values and for a change of zone or stack name.
 */
export function resolveSettings(lookup: (key: string) => unknown, root = REPO_ROOT): Settings {
  const named = lookup(SETTINGS_FILE_KEY);
  const file = path.resolve(root, typeof named === 'string' && named.trim() ? named.trim() : DEFAULT_SETTINGS_FILE);
  const saved = readSaved(file);
  const merged: Values = { ...saved };
  for (const key of Object.keys(FIELDS) as FieldName[]) {
    const given = lookup(key);
    if (given === undefined || given === null) continue;
    if (given === '') delete merged[key];
    else merged[key] = given;
  }

  let config: DeployConfig;
  try {
    config = loadConfig((key) => merged[key as FieldName]);
  } catch (error) {
    if (error instanceof ConfigError) {
      throw new ConfigError(`${error.message}\n(settings: ${file} overridden by -c key=value)`);
    }
    throw error;
  }
  refuseIdentityChange(saved, config, file);
  const closing = Object.keys(saved).length ? closingMessages(savedConfig(saved), config) : [];

  const next = toSave(merged, config);
  const changed = [...new Set([...Object.keys(saved), ...Object.keys(next)])].filter(
    (key): key is FieldName => isField(key) && JSON.stringify(saved[key]) !== JSON.stringify(next[key]),
  );
  return {
    file,
    config,
    changed,
    closing,
    save: async () => {
      if (changed.length) await writeJsonAtomic(file, next);
    },
  };
}
