// Child process for the kill -9 test: writes points into an embedded store, reports, then waits to be killed.
import { openEmbeddedStore } from '../../service/src/store/embedded/store.js';
import { recordFrom } from '../../service/src/schemas/records.js';

const [dataDir, countText] = process.argv.slice(2);
const store = openEmbeddedStore({ dataDir: dataDir, checkpointEvery: 1_000_000 });
await store.createCollection('c', 8, 'm');
const collection = store.collection('c');
const count = Number(countText);
for (let i = 0; i < count; i++) {
  const vector = new Float32Array(8);
  vector[i % 8] = 1;
  vector[(i + 1) % 8] = i / count;
  await collection.upsert(
    recordFrom({
      image_id: `img-${String(i).padStart(4, '0')}`,
      item_id: `item-${i}`,
      item_name: null,
      item_code: null,
      file: `f${i}`,
      sha256: 'x',
      bytes: 1,
      model: 'm',
      created_at: new Date().toISOString(),
    }),
    vector,
  );
}
// Force the in-memory index to exist so a checkpoint would have been possible, then never close.
await collection.searchItems(new Float32Array(8).fill(1), 1);
process.stdout.write('written\n');
setInterval(() => {}, 1000);
