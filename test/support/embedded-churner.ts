// Child process for the kill -9 tests: adds and deletes points in an embedded store with frequent index
// checkpoints (so a kill can land inside one), printing each acknowledged operation as "+id" or "-id"
// (and "?id" before a delete starts).
// Runs until killed.
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import { recordFrom } from '../../service/src/schemas/records.js';

const [dataDir, startText] = process.argv.slice(2);
const store = openEmbeddedStore({ dataDir: dataDir!, checkpointEvery: 7, trainAt: 64 });
const collection = store.collection('c');
if (!(await collection.info())) await store.createCollection('c', 16, 'm');
let next = Number(startText);
const live: string[] = [];
const vector = (i: number) => Float32Array.from({ length: 16 }, (_, d) => Math.sin(i * 0.37 + d * 1.3));
for (;;) {
  const id = `img-${next}`;
  await collection.upsert(
    recordFrom({
      image_id: id,
      item_id: `item-${next % 40}`,
      item_name: null,
      item_code: null,
      file: `${id}.jpg`,
      sha256: 'x',
      bytes: 1,
      model: 'm',
      created_at: new Date().toISOString(),
    }),
    vector(next),
  );
  process.stdout.write(`+${id}\n`);
  live.push(id);
  next++;
  if (live.length > 30) {
    const victim = live.splice(next % live.length, 1)[0]!;
    process.stdout.write(`?${victim}\n`); // about to delete: after a kill it may or may not be gone
    await collection.deleteImages([victim]);
    process.stdout.write(`-${victim}\n`);
  }
  if (next % 5 === 0) await collection.searchItems(vector(next), 3);
}
