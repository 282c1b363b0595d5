// Bytes → unit-length vector. Decoding and inference both hold a slot of the shared work queue,
// since both take CPU and memory.
import { decodeForModel, type DecodedImage } from '../images/preprocess.js';
import type { ModelManifest, OnnxModel } from './model.js';
import type { WorkQueue } from './work-queue.js';

export class Embedder {
  constructor(
    private readonly model: OnnxModel,
    private readonly queue: WorkQueue,
    private readonly maxPixels: number,
  ) {}

  get manifest(): ModelManifest {
    return this.model.manifest;
  }

  /** The .onnx file it runs. */
  get path(): string {
    return this.model.path;
  }

  private async decode(bytes: Buffer, zoom?: number): Promise<DecodedImage> {
    const since = performance.now();
    const image = await decodeForModel(bytes, this.model.manifest, { maxPixels: this.maxPixels, zoom });
    this.queue.observer?.decoded((performance.now() - since) / 1000);
    return image;
  }

  private async infer(images: DecodedImage[]): Promise<Float32Array[]> {
    const since = performance.now();
    const vectors = await this.model.run(images);
    this.queue.observer?.inferred((performance.now() - since) / 1000, images.length);
    return vectors;
  }

  /** The image's vector; `zoom` < 1 embeds only that central fraction of each side. */
  embed(bytes: Buffer, zoom?: number): Promise<Float32Array> {
    return this.queue.run(async () => (await this.infer([await this.decode(bytes, zoom)]))[0]!);
  }

  /** Like embed, but only when a worker is free right now; undefined otherwise (nothing waits, nothing is refused). */
  tryEmbed(bytes: Buffer, zoom?: number): Promise<Float32Array> | undefined {
    return this.queue.tryRun(async () => (await this.infer([await this.decode(bytes, zoom)]))[0]!);
  }

  /** Several images in one inference call (bulk work such as migration). Fails as a whole. */
  async embedBatch(images: Buffer[]): Promise<Float32Array[]> {
    if (images.length === 0) return [];
    const decoded = await Promise.all(images.map((bytes) => this.queue.run(() => this.decode(bytes))));
    return this.queue.run(() => this.infer(decoded));
  }

  close(): Promise<void> {
    return this.model.close();
  }
}
