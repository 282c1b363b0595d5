// `ops sync`: one ERPNext sync run from its own process, beside a running API or without one. It opens the catalog
// as the API does (same store, same model, item writes locked across processes), without loading the search
// index it never uses, runs service/src/erpnext/sync.ts and closes everything again.
import type { Config } from '../service/src/config.js';
import { erpNextSync, erpNextSyncConfigured } from '../service/src/erpnext/connector.js';
import type { SyncSummary } from '../service/src/erpnext/sync.js';
import { openService } from '../service/src/service.js';
import { OpsError, type Reporter } from './cli.js';

export interface SyncCommandOptions {
  dryRun: boolean;
  full: boolean;
  allowMassRemoval: boolean;
  signal: AbortSignal;
}

export async function runErpNextSync(config: Config, reporter: Reporter, options: SyncCommandOptions) {
  if (!erpNextSyncConfigured(config)) {
    throw new OpsError(
      'the ERPNext sync is not configured: set ERPNEXT_URL, ERPNEXT_API_KEY and ERPNEXT_API_SECRET (see the ' +
        'README, section ERPNext)',
    );
  }
  const log = { info: (message: string) => reporter.info(message), warn: (message: string) => reporter.warn(message) };
  const service = await openService(config, log, undefined, { warmIndex: false });
  const sync = erpNextSync(config, service.catalog, log);
  try {
    const summary: SyncSummary = await sync.run({ ...options, reporter, holder: 'ops sync' });
    return summary;
  } catch (error) {
    if (options.signal.aborted) {
      throw new OpsError('interrupted; what is done is kept: run the same command again to continue');
    }
    throw error;
  } finally {
    sync.close();
    await service.close();
  }
}
