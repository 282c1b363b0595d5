// The models this process can embed with. MODEL_PATH is the default; after a migration switches the
// live collection to another model, the API loads that model by name from the same directory, so a
// model change needs no restart. All models share one work queue: the CPU is the same.
import path from 'node:path';
import { Embedder } from './embedder.js';
import { loadModel, ModelError } from './model.js';
import { WorkQueue, type EmbeddingObserver } from './work-queue.js';

export interface RegistryOptions {
  threads: number;
  concurrency: number;
  queueMax: number;
  maxPixels: number;
}

export class ModelRegistry {
  private readonly queue: WorkQueue;
  private readonly loaded = new Map<string, Promise<Embedder>>();
  private readonly byPath = new Map<string, Promise<Embedder>>();

  constructor(
    readonly defaultPath: string,
    private readonly options: RegistryOptions,
  ) {
    this.queue = new WorkQueue(options.concurrency, options.queueMax);
  }

  /** Loads a model file once; later calls share the same session. */
  fromPath(file: string): Promise<Embedder> {
    const key = path.resolve(file);
    let pending = this.byPath.get(key);
    if (!pending) {
      pending = loadModel(key, { threads: this.options.threads, workers: this.options.concurrency }).then(
        (model) => new Embedder(model, this.queue, this.options.maxPixels),
      );
      pending.then(
        (embedder) => this.loaded.set(embedder.manifest.name, pending!),
        () => this.byPath.delete(key), // a failed load may be retried after the file is fixed
      );
      this.byPath.set(key, pending);
    }
    return pending;
  }

  /** Sends the timings of every model's embeddings to `observer` (one per process: the queue is shared). */
  observe(observer: EmbeddingObserver): void {
    this.queue.observer = observer;
  }

  /** True when an image sent now would be refused (503 busy): every slot busy and the queue full. */
  get full(): boolean {
    return this.queue.full;
  }

  /** Embedding jobs waiting for a free slot. */
  get queued(): number {
    return this.queue.queued;
  }

  default(): Promise<Embedder> {
    return this.fromPath(this.defaultPath);
  }

  /** The model whose sidecar name is `name`: already loaded, or NAME.onnx beside MODEL_PATH. */
  async byName(name: string): Promise<Embedder> {
    const known = this.loaded.get(name);
    if (known) return known;
    const embedder = await this.fromPath(path.join(path.dirname(this.defaultPath), `${name}.onnx`));
    if (embedder.manifest.name !== name) {
      throw new ModelError(`Model file for "${name}" declares the name "${embedder.manifest.name}" in its sidecar.`);
    }
    return embedder;
  }

  async close(): Promise<void> {
    const embedders = await Promise.allSettled([...this.byPath.values()]);
    for (const result of embedders) if (result.status === 'fulfilled') await result.value.close();
  }
}
