// The operations CLI: `npm run ops -- <command> [options]`, compiled `node dist/scripts/ops.js <command>`
// (the backup timer on the instance runs exactly that inside the api container). Each command reads the
// same configuration as the API (service/src/config.ts), opens what it needs, and calls the function of
// its module; this file only translates between the command line and those functions.
//
// Output: progress and messages on stderr, one JSON summary line on stdout. Exit codes: 0 done,
// 1 failed or interrupted (one line saying why; every command can be run again), 2 wrong command line.
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { EC2Client } from '@aws-sdk/client-ec2';
import { ImageFiles } from '../service/src/catalog/image-files.js';
import { catalogDuplicates, type DuplicatePair } from '../service/src/catalog/duplicates.js';
import { ConfigError, loadConfig, type Config } from '../service/src/config.js';
import { ModelError } from '../service/src/embedding/model.js';
import { ErpNextError } from '../service/src/erpnext/errors.js';
import { SyncBusyError } from '../service/src/erpnext/sync.js';
import { ModelRegistry } from '../service/src/embedding/registry.js';
import { openStore, storeBackup } from '../service/src/store/open-store.js';
import {
  StoreBackupError,
  StoreFullError,
  StoreUnavailableError,
  type VectorStore,
} from '../service/src/store/port.js';
import { SchemaError } from '../service/src/store/embedded/schema.js';
import { runBackup } from './backup.js';
import {
  consoleReporter,
  helpText,
  integerOption,
  OpsError,
  parseOptions,
  stringOption,
  UsageError,
  type CommandSpec,
  type ParsedOptions,
  type Reporter,
} from './cli.js';
import { checkConsistency, describeConsistency, removeOrphans, repairInterrupted } from './consistency.js';
import { DATA_VOLUME_TAG } from '../service/src/lib/aws-tags.js';
import { ebsSnapshot } from './ebs-snapshot.js';
import { detectEc2 } from './ec2-metadata.js';
import { runErpNextSync } from './erpnext-sync.js';
import { dropOld, migrate, rollback, type MigrateDeps } from './migrate/index.js';
import { acquireOpsLock } from './ops-lock.js';
import { runRestore } from './restore.js';

interface Context {
  config: Config;
  reporter: Reporter;
  signal: AbortSignal;
  /** Writes a command's own output (a table) to stdout, before the summary line. */
  print: (text: string) => void;
}

interface Command {
  spec: CommandSpec;
  /** Takes the ops lock (one backup/restore/migrate at a time). */
  exclusive: boolean;
  /** Stops cleanly at the next step on Ctrl-C (the others simply end: their temporary files are cleaned
   * by the next run). */
  interruptible?: boolean;
  run(options: ParsedOptions, context: Context): Promise<object>;
}

const storeLog = (reporter: Reporter) => ({
  info: (message: string) => reporter.info(message),
  warn: (message: string) => reporter.warn(message),
});

/** Opens the store, runs `work`, and closes the store whatever happens. */
async function withStore<T>(context: Context, work: (store: VectorStore) => Promise<T>): Promise<T> {
  const store = openStore(context.config, storeLog(context.reporter));
  try {
    await store.ping();
    return await work(store);
  } finally {
    await store.close();
  }
}

function ec2Client(region: string): EC2Client {
  return new EC2Client({ region });
}

async function regionFor(config: Config): Promise<{ region: string; instanceId?: string }> {
  if (config.awsRegion) return { region: config.awsRegion, instanceId: (await detectEc2())?.instanceId };
  const identity = await detectEc2();
  if (!identity)
    throw new OpsError('no AWS region: set AWS_REGION (instance metadata, which would give it on EC2, did not answer)');
  return identity;
}

const backup: Command = {
  exclusive: true,
  spec: {
    name: 'backup',
    summary:
      'Back up the vectors (embedded database, or Qdrant snapshots) and the original images into BACKUP_DIR, ' +
      'then keep the newest N backups.',
    options: {
      keep: {
        type: 'string',
        placeholder: 'N',
        description: 'Backups to keep, this one included (default BACKUP_KEEP, 7).',
      },
    },
    details:
      'Each run writes BACKUP_DIR/<UTC time>/ with manifest.json (checksums of every file); unchanged images ' +
      'are hard-linked from the previous backup.',
  },
  async run(options, context) {
    const { config, reporter } = context;
    const keep = integerOption(options.keep, 'keep', 1, 1000) ?? config.backupKeep;
    return withStore(context, (store) =>
      runBackup({
        store,
        files: new ImageFiles(config.imageStorageDir),
        alias: config.collection,
        backupDir: config.backupDir,
        keep,
        reporter,
        backup: storeBackup(config, store, storeLog(reporter)),
      }),
    );
  },
};

const restore: Command = {
  exclusive: true,
  spec: {
    name: 'restore',
    summary: 'Restore vectors and images from a backup (the newest by default), then run the consistency check.',
    options: {
      backup: {
        type: 'string',
        placeholder: 'ID',
        description: 'The backup to restore (a directory name in BACKUP_DIR, e.g. 20260314T023000123Z).',
      },
    },
    details:
      'Embedded store: stop the API first; the replaced database is kept in DATA_DIR/pre-restore-<time>/.\n' +
      'Qdrant: runs against the live stack; each collection is recovered from its snapshot (priority snapshot) ' +
      'and the aliases are recreated.',
  },
  async run(options, { config, reporter }) {
    return runRestore(
      {
        kind: config.qdrantUrl ? 'qdrant' : 'embedded',
        openStore: () => openStore(config, storeLog(reporter)),
        files: new ImageFiles(config.imageStorageDir),
        alias: config.collection,
        backupDir: config.backupDir,
        reporter,
        backupOf: (store) => storeBackup(config, store, storeLog(reporter)),
      },
      { backup: stringOption(options.backup) },
    );
  },
};

const check: Command = {
  exclusive: false,
  spec: {
    name: 'check',
    summary: 'Check that every point of the live collection has its image file and every image file its point.',
    options: {
      'verify-hashes': {
        type: 'boolean',
        description: 'Also read every file and compare it with the sha256 recorded at ingest.',
      },
      repair: {
        type: 'boolean',
        description:
          'First finish what a crash interrupted (journaled deletes, staged files older than 10 minutes) and ' +
          'recompute the item centroids, then remove image files that belong to no point; each is reported. ' +
          'Safe while the API runs.',
      },
    },
    details:
      'Exits 1 when something is inconsistent (the first findings are listed). Points without a file cannot be ' +
      'repaired here: restore the files from a backup (npm run ops -- restore) or delete those items.',
  },
  async run(options, context) {
    const { config, reporter } = context;
    return withStore(context, async (store) => {
      const files = new ImageFiles(config.imageStorageDir);
      const repair = options.repair === true;
      let repaired = {
        ...(repair ? await repairInterrupted(store, files, config.collection, reporter) : {}),
        // Item centroids are derived data: recomputing them from the points repairs any drift.
        ...(repair ? { centroids: await store.collection(config.collection).rebuildCentroids() } : {}),
        removedFiles: 0,
      };
      let report = await checkConsistency({
        store,
        files,
        alias: config.collection,
        verifyHashes: options['verify-hashes'] === true,
        reporter,
      });
      if (repair && report.filesWithoutPoint.length > 0) {
        for (const file of report.filesWithoutPoint) reporter.warn(`removing ${file}: it belongs to no point`);
        await removeOrphans(files, report.filesWithoutPoint);
        repaired = { ...repaired, removedFiles: report.filesWithoutPoint.length };
        report = await checkConsistency({ store, files, alias: config.collection, reporter });
      }
      const verdict = describeConsistency(report, reporter);
      reporter.summary({
        what: 'check',
        collection: report.collection,
        points: report.points,
        files: report.files,
        pointsWithoutFile: report.pointsWithoutFile.length,
        filesWithoutPoint: report.filesWithoutPoint.length,
        hashMismatches: report.hashMismatches.length,
        ...(repair ? { repaired } : {}),
        ok: report.ok,
      });
      if (!report.ok) throw new OpsError(verdict);
      reporter.info(verdict);
      return {};
    });
  },
};

const duplicates: Command = {
  exclusive: false,
  spec: {
    name: 'duplicates',
    summary: 'List pairs of items that share the same picture (same bytes, or resized, re-encoded or cropped).',
    options: {
      json: { type: 'boolean', description: 'Put the pairs in the JSON summary line instead of printing a table.' },
    },
    details:
      'Catalog hygiene: such a pair is usually one product entered twice, or a photo added to the wrong item. ' +
      'Each image is compared with its nearest images of other items (embedding), and each candidate is verified ' +
      'on the two originals (pixel alignment), as ingest does for its duplicate warnings. Read-only; safe while ' +
      'the API runs. Exits 0 whether or not pairs are found.',
  },
  async run(options, context) {
    const { config, reporter, print } = context;
    return withStore(context, async (store) => {
      const collection = store.collection(config.collection);
      const info = await collection.info();
      if (!info) throw new OpsError(`there is no collection or alias ${config.collection} in the ${store.kind} store`);
      const progress = reporter.progress('images', info.points);
      const pairs = await catalogDuplicates(store.collection(info.name), new ImageFiles(config.imageStorageDir), {
        warn: (message) => reporter.warn(message),
        progress: () => progress.advance(),
      });
      progress.done();
      const items = new Set(pairs.flatMap((pair) => [pair.item_a, pair.item_b]));
      if (options.json !== true) print(duplicateTable(pairs));
      return {
        what: 'duplicates',
        collection: info.name,
        images: info.points,
        pairs: pairs.length,
        items: items.size,
        ...(options.json === true ? { duplicates: pairs } : {}),
      };
    });
  },
};

function duplicateTable(pairs: DuplicatePair[]): string {
  if (pairs.length === 0) return 'No two items share a picture.\n';
  const rows = [
    ['item', 'image', 'other item', 'its image', 'cosine', 'reason'],
    ...pairs.map((p) => [p.item_a, p.image_a, p.item_b, p.image_b, p.score.toFixed(3), p.reason]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  return (
    rows
      .map((row) =>
        row
          .map((cell, i) => cell.padEnd(widths[i]!))
          .join('  ')
          .trimEnd(),
      )
      .join('\n') + '\n'
  );
}

const ebs: Command = {
  exclusive: false,
  spec: {
    name: 'ebs-snapshot',
    summary: 'Take an EBS snapshot of the data volume, tagged as made by this command, and prune older ones it made.',
    options: {
      'volume-id': {
        type: 'string',
        placeholder: 'VOL',
        description: `The volume (default DATA_VOLUME_ID, else the volume tagged ${DATA_VOLUME_TAG}).`,
      },
      stack: {
        type: 'string',
        placeholder: 'NAME',
        description: `Find the volume whose ${DATA_VOLUME_TAG} tag is NAME (the stack name).`,
      },
      reason: { type: 'string', placeholder: 'TEXT', description: 'Why (stored in a tag; default "manual").' },
      wait: { type: 'boolean', description: 'Wait until the snapshot is completed.' },
      keep: {
        type: 'string',
        placeholder: 'N',
        description: 'Snapshots made by this command to keep for the volume (default EBS_SNAPSHOT_KEEP, 3).',
      },
    },
    details:
      'Needs ec2:DescribeVolumes, ec2:CreateSnapshot, ec2:CreateTags, ec2:DescribeSnapshots and ' +
      "ec2:DeleteSnapshot. Region: AWS_REGION, else the instance's.",
  },
  async run(options, { config, reporter }) {
    const keep = integerOption(options.keep, 'keep', 1, 1000) ?? config.ebsSnapshotKeep;
    const { region, instanceId } = await regionFor(config);
    const volumeId = stringOption(options['volume-id']) ?? config.dataVolumeId;
    const client = ec2Client(region);
    try {
      return await ebsSnapshot(
        client,
        {
          volumeId,
          stack: stringOption(options.stack),
          instanceId,
          reason: stringOption(options.reason) ?? 'manual',
          wait: options.wait === true,
          keep,
        },
        reporter,
      );
    } finally {
      client.destroy();
    }
  },
};

const migrateCommand: Command = {
  exclusive: true,
  interruptible: true,
  spec: {
    name: 'migrate',
    summary:
      'Re-embed every stored image with another model into a new collection and switch QDRANT_COLLECTION (an ' +
      'alias) to it without downtime.',
    options: {
      'to-model': {
        type: 'string',
        placeholder: 'PATH',
        description:
          'The new ONNX model (its NAME.json sidecar beside it). Copy it beside MODEL_PATH: the API loads it ' +
          'from there.',
      },
      rollback: {
        type: 'boolean',
        description: 'Switch back to the collection the last migration left, carrying over changes made since.',
      },
      'drop-old': {
        type: 'boolean',
        description: 'Delete the collection the last migration left (no rollback afterwards).',
      },
      'allow-missing': {
        type: 'boolean',
        description: 'Switch even though some stored images cannot be read; their points are left out (and listed).',
      },
      'skip-ebs-snapshot': {
        type: 'boolean',
        description: 'Do not take an EBS snapshot first (taken by default when running on EC2).',
      },
      'legacy-model': {
        type: 'string',
        placeholder: 'NAME',
        description: 'Model name of a plain legacy collection that records none (needed for its rollback).',
      },
      'batch-size': { type: 'string', placeholder: 'N', description: 'Images embedded per batch (default 32).' },
      'verify-sample': {
        type: 'string',
        placeholder: 'N',
        description: 'Stored images searched for themselves before the switch (default 20).',
      },
      'settle-ms': {
        type: 'string',
        placeholder: 'MS',
        description: 'Pause after the switch before the last catch-up (default 5000; the API follows within 1 s).',
      },
    },
    details: 'Resumable: run the same command again after an interruption. The old collection stays until --drop-old.',
  },
  async run(options, context) {
    const { config, reporter, signal } = context;
    const modes = [options['to-model'] !== undefined, options.rollback === true, options['drop-old'] === true].filter(
      Boolean,
    ).length;
    if (modes !== 1) throw new UsageError('give exactly one of --to-model PATH, --rollback or --drop-old');
    const settleMs = integerOption(options['settle-ms'], 'settle-ms', 1000, 600_000);
    const batchSize = integerOption(options['batch-size'], 'batch-size', 1, 1024);
    const models = new ModelRegistry(config.modelPath, {
      threads: config.onnxThreads,
      concurrency: config.embedConcurrency,
      queueMax: 1_000_000, // bounded by the batch size instead
      maxPixels: config.maxImagePixels,
    });
    try {
      return await withStore(context, (store) => {
        const deps: MigrateDeps = {
          store,
          files: new ImageFiles(config.imageStorageDir),
          models,
          alias: config.collection,
          modelPath: config.modelPath,
          backupDir: config.backupDir,
          reporter,
          signal,
          ec2: {
            detect: () => detectEc2(),
            snapshot: async (identity, reason) => {
              const client = ec2Client(config.awsRegion ?? identity.region);
              try {
                const result = await ebsSnapshot(
                  client,
                  {
                    volumeId: config.dataVolumeId,
                    instanceId: identity.instanceId,
                    reason,
                    wait: false,
                    keep: config.ebsSnapshotKeep,
                  },
                  reporter,
                );
                return result.snapshotId;
              } finally {
                client.destroy();
              }
            },
          },
        };
        if (options.rollback) return rollback(deps, { settleMs, batchSize });
        if (options['drop-old']) return dropOld(deps);
        return migrate(deps, {
          toModel: path.resolve(stringOption(options['to-model'])!),
          batchSize,
          verifySample: integerOption(options['verify-sample'], 'verify-sample', 0, 10_000),
          settleMs,
          allowMissing: options['allow-missing'] === true,
          skipEbsSnapshot: options['skip-ebs-snapshot'] === true,
          legacyModel: stringOption(options['legacy-model']),
        });
      });
    } finally {
      await models.close();
    }
  },
};

const sync: Command = {
  exclusive: false, // its own lock: one sync at a time, beside the API and the other commands
  interruptible: true,
  spec: {
    name: 'sync',
    summary:
      'Bring the catalog in line with ERPNext (ERPNEXT_URL): new and changed Items and their images in, ' +
      'removed ones out.',
    options: {
      'dry-run': { type: 'boolean', description: 'Print what would change; download and change nothing.' },
      full: { type: 'boolean', description: 'Re-read every Item, not only those changed since the last run.' },
      'allow-mass-removal': {
        type: 'boolean',
        description: 'Remove the items ERPNext does not list even when they are most of the catalog.',
      },
    },
    details:
      'Safe while the API runs (its own scheduled sync waits for this one). An image that fails is reported with ' +
      'its Item and skipped. Interrupted (Ctrl-C, kill): run it again, it continues.',
  },
  run: (options, { config, reporter, signal }) =>
    runErpNextSync(config, reporter, {
      dryRun: options['dry-run'] === true,
      full: options.full === true,
      allowMassRemoval: options['allow-mass-removal'] === true,
      signal,
    }),
};

const COMMANDS: Record<string, Command> = {
  backup,
  restore,
  check,
  duplicates,
  migrate: migrateCommand,
  'ebs-snapshot': ebs,
  sync,
};

function overview(): string {
  const width = Math.max(...Object.keys(COMMANDS).map((name) => name.length));
  const lines = Object.entries(COMMANDS).map(([name, command]) => `  ${name.padEnd(width)}  ${command.spec.summary}`);
  return (
    `Usage: npm run ops -- <command> [options]   (compiled: node dist/scripts/ops.js ` +
    `<command>)\n\nCommands:\n${lines.join('\n')}\n\nRun "npm run ops -- <command> --help" for its options.\n`
  );
}

/** Failures whose message is meant for the operator; anything else is a bug and shows its stack. */
const EXPECTED = [
  OpsError,
  ConfigError,
  ModelError,
  StoreUnavailableError,
  StoreBackupError,
  StoreFullError,
  SchemaError,
  SyncBusyError,
  ErpNextError,
];

async function main(argv: string[], io = { stdout: process.stdout, stderr: process.stderr }): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overview());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS[name];
  if (!command) {
    io.stderr.write(`ops: unknown command ${JSON.stringify(name)}; commands: ${Object.keys(COMMANDS).join(', ')}\n`);
    return 2;
  }
  const reporter = consoleReporter({ stdout: io.stdout, stderr: io.stderr });
  const controller = new AbortController();
  const interrupt = () => {
    if (controller.signal.aborted) process.exit(130);
    reporter.warn('interrupted: stopping after the current step (press Ctrl-C again to quit at once)');
    controller.abort();
  };
  if (command.interruptible) {
    process.on('SIGINT', interrupt);
    process.on('SIGTERM', interrupt);
  }
  let release: (() => Promise<void>) | undefined;
  try {
    const options = parseOptions(command.spec, rest);
    if (options.help) {
      io.stdout.write(helpText(command.spec));
      return 0;
    }
    const config = loadConfig();
    if (command.exclusive) release = await acquireOpsLock(config.backupDir, name);
    const print = (text: string) => void io.stdout.write(text);
    const summary = await command.run(options, { config, reporter, signal: controller.signal, print });
    if (Object.keys(summary).length > 0) reporter.summary(summary);
    return 0;
  } catch (error) {
    if (error instanceof UsageError) {
      io.stderr.write(`ops ${name}: ${error.message}\nRun "npm run ops -- ${name} --help" for the options.\n`);
      return 2;
    }
    // One line: "Invalid configuration:\n- A\n- B" becomes "Invalid configuration: A; B".
    const message = ((error as Error).message ?? String(error))
      .replace(/:\s*\n\s*-\s*/g, ': ')
      .replace(/\s*\n\s*(-\s*)?/g, '; ');
    // A file-system failure (no space, no permission) is the operator's to fix, not a bug: its message names the path.
    const fileSystem = typeof (error as NodeJS.ErrnoException).syscall === 'string';
    if (fileSystem || EXPECTED.some((type) => error instanceof type))
      io.stderr.write(`ops ${name} failed: ${message}\n`);
    else io.stderr.write(`ops ${name} failed: ${message}\n${(error as Error).stack ?? ''}\n`);
    return 1;
  } finally {
    process.off('SIGINT', interrupt);
    process.off('SIGTERM', interrupt);
    await release?.();
  }
}

// Run when executed (tsx scripts/ops.ts, node dist/scripts/ops.js), not when imported by tests.
const self = fileURLToPath(import.meta.url).replace(/\.[jt]s$/, '');
if (process.argv[1] && path.resolve(process.argv[1]).replace(/\.[jt]s$/, '') === self) {
  void main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
