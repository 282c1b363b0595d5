// The consistency check: every point of the live collection has its original file under
// IMAGE_STORAGE_DIR, and every stored file belongs to a point. Optionally each file's sha256 is
// compared with the one its point recorded at ingest. Run on a live system, an ingest that lands
// between the two listings can show up as one file without its point; run it again to be sure.
import path from 'node:path';
import type { ImageFiles } from '../service/src/catalog/image-files.js';
import type { VectorStore } from '../service/src/store/port.js';
import { finishInterrupted } from '../service/src/catalog/recovery.js';
import { OpsError, type Reporter } from './cli.js';
import { forEachLimited, isNotFound, sha256File } from '../service/src/lib/files.js';
import { scanPoints } from './points.js';

export interface ConsistencyReport {
  alias: string;
  collection: string;
  points: number;
  files: number;
  pointsWithoutFile: Array<{ image_id: string; item_id: string; file: string }>;
  filesWithoutPoint: string[];
  /** Files whose content no longer matches the sha256 recorded by their point (only with verifyHashes). */
  hashMismatches: string[];
  ok: boolean;
}

export async function checkConsistency(options: {
  store: VectorStore;
  files: ImageFiles;
  alias: string;
  verifyHashes?: boolean;
  reporter: Reporter;
}): Promise<ConsistencyReport> {
  const { store, files, alias, reporter } = options;
  const info = await store.collection(alias).info();
  if (!info)
    throw new OpsError(`there is no collection or alias ${alias} in the ${store.kind} store; nothing to check`);
  const collection = store.collection(info.name);

  const onDisk = new Set<string>();
  for await (const file of files.list()) onDisk.add(file);

  const progress = reporter.progress(`checking ${info.name}`, info.points);
  const pointsWithoutFile: ConsistencyReport['pointsWithoutFile'] = [];
  const referenced = new Map<string, string>();
  let points = 0;
  for await (const { record } of scanPoints(collection)) {
    points++;
    referenced.set(record.file, record.sha256);
    if (!onDisk.has(record.file))
      pointsWithoutFile.push({ image_id: record.image_id, item_id: record.item_id, file: record.file });
    progress.advance();
  }
  progress.done();
  const filesWithoutPoint = [...onDisk].filter((file) => !referenced.has(file)).sort();

  const hashMismatches: string[] = [];
  if (options.verifyHashes) {
    const present = [...referenced].filter(([file]) => onDisk.has(file));
    const hashing = reporter.progress('verifying sha256', present.length);
    await forEachLimited(present, 8, async ([file, sha256]) => {
      try {
        if ((await sha256File(path.join(files.root, file))).sha256 !== sha256) hashMismatches.push(file);
      } catch (error) {
        if (!isNotFound(error)) throw error; // deleted meanwhile: not a mismatch
      }
      hashing.advance();
    });
    hashing.done();
    hashMismatches.sort();
  }

  const ok = pointsWithoutFile.length === 0 && filesWithoutPoint.length === 0 && hashMismatches.length === 0;
  return {
    alias,
    collection: info.name,
    points,
    files: onDisk.size,
    pointsWithoutFile,
    filesWithoutPoint,
    hashMismatches,
    ok,
  };
}

/** Prints the findings (the first few of each kind) and returns the one-line verdict. */
export function describeConsistency(report: ConsistencyReport, reporter: Reporter, shown = 10): string {
  for (const point of report.pointsWithoutFile.slice(0, shown)) {
    reporter.warn(`point ${point.image_id} (item ${JSON.stringify(point.item_id)}) has no file ${point.file}`);
  }
  for (const file of report.filesWithoutPoint.slice(0, shown)) reporter.warn(`file ${file} belongs to no point`);
  for (const file of report.hashMismatches.slice(0, shown))
    reporter.warn(`file ${file} does not match the sha256 its point recorded`);
  const more =
    Math.max(0, report.pointsWithoutFile.length - shown) +
    Math.max(0, report.filesWithoutPoint.length - shown) +
    Math.max(0, report.hashMismatches.length - shown);
  if (more > 0) reporter.warn(`... and ${more} more`);
  const counts =
    `${report.points} points, ${report.files} files: ${report.pointsWithoutFile.length} points without file, ` +
    `${report.filesWithoutPoint.length} files without point` +
    (report.hashMismatches.length > 0 ? `, ${report.hashMismatches.length} files changed since ingest` : '');
  return `${report.collection} (${report.alias}) ${report.ok ? 'is consistent' : 'is NOT consistent'}: ${counts}`;
}

/** `check --repair`, step one: what a crash interrupted (see service/src/catalog/recovery.ts). */
export async function repairInterrupted(store: VectorStore, files: ImageFiles, alias: string, reporter: Reporter) {
  const info = await store.collection(alias).info();
  if (!info)
    throw new OpsError(`there is no collection or alias ${alias} in the ${store.kind} store; nothing to repair`);
  return finishInterrupted({
    collection: store.collection(info.name),
    files,
    log: { info: (m) => reporter.info(m), warn: (m) => reporter.warn(m) },
    stagedOlderThanMs: 10 * 60_000,
  });
}

/** `check --repair`, step two: files no point refers to. */
export async function removeOrphans(files: ImageFiles, orphans: string[]): Promise<void> {
  await forEachLimited(orphans, 8, (file) => files.remove(file));
}
