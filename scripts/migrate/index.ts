// `ops migrate`: what the CLI and the tests use. The modules: migrate.ts (the run to a new model), carry.ts
// (moving points between collections), verify.ts (checks before a switch), legacy.ts (a plain collection
// becomes an alias), rollback.ts (--rollback, --drop-old), state.ts (the record of the last switch).
export { migrate } from './migrate.js';
export { dropOld, rollback } from './rollback.js';
export type { Ec2Hooks, MigrateDeps, MigrateOptions, MigrateSummary } from './types.js';
