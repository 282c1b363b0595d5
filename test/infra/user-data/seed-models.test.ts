// seed-models.sh run for real with bash, as the one-shot "models" compose service runs it: image models in, a
// volume directory out.
import {
  chmodSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isRoot, runScript } from './run-script.js';

describe('seed-models.sh', () => {
  let dir: string;
  let image: string;
  let volume: string;
  beforeEach(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'seed-'));
    image = path.join(dir, 'app-models');
    volume = path.join(dir, 'data-models');
    mkdirSync(image);
    mkdirSync(volume);
    writeFileSync(path.join(image, 'efficientnet_b0.onnx'), 'weights of the image');
    writeFileSync(path.join(image, 'efficientnet_b0.json'), '{"name":"efficientnet_b0","dim":1280}');
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  const seed = () => runScript('seed-models.sh', [image, volume]);
  const read = (name: string) => readFileSync(path.join(volume, name), 'utf8');

  it('copies the image model and its sidecar into an empty volume directory, readable by all', () => {
    const run = seed();
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain('efficientnet_b0: copied');
    expect(read('efficientnet_b0.onnx')).toBe('weights of the image');
    expect(read('efficientnet_b0.json')).toBe('{"name":"efficientnet_b0","dim":1280}');
    expect(readdirSync(volume).sort()).toEqual(['efficientnet_b0.json', 'efficientnet_b0.onnx']); // no temp files
    const again = seed();
    expect(again.status).toBe(0);
    expect(again.stderr).toContain('efficientnet_b0: already on the volume');
  });

  it('never overwrites a model on the volume, and says when it differs from the image', () => {
    writeFileSync(path.join(volume, 'efficientnet_b0.onnx'), 'weights the vectors were made with');
    writeFileSync(path.join(volume, 'efficientnet_b0.json'), '{"name":"efficientnet_b0","dim":1280,"old":true}');
    writeFileSync(path.join(volume, 'mobilenet_v3.onnx'), 'a migrated-to model');
    const run = seed();
    expect(run.status, run.stderr).toBe(0);
    expect(run.stderr).toContain("kept the volume's efficientnet_b0.onnx, which differs from the image's");
    expect(read('efficientnet_b0.onnx')).toBe('weights the vectors were made with');
    expect(read('efficientnet_b0.json')).toContain('"old":true');
    expect(read('mobilenet_v3.onnx')).toBe('a migrated-to model');
  });

  it('adds a new model of a newer image beside the existing ones', () => {
    writeFileSync(path.join(volume, 'efficientnet_b0.onnx'), 'weights of the image');
    writeFileSync(path.join(volume, 'efficientnet_b0.json'), '{}');
    writeFileSync(path.join(image, 'convnext_tiny.onnx'), 'new weights');
    writeFileSync(path.join(image, 'convnext_tiny.json'), '{"name":"convnext_tiny"}');
    const run = seed();
    expect(run.status, run.stderr).toBe(0);
    expect(read('convnext_tiny.onnx')).toBe('new weights');
    expect(read('efficientnet_b0.json')).toBe('{}');
  });

  it('refuses an image without models or a model without sidecar, and changes nothing', () => {
    rmSync(path.join(image, 'efficientnet_b0.json'));
    const orphan = seed();
    expect(orphan.status).toBe(1);
    expect(orphan.stderr).toContain('has no sidecar');
    expect(readdirSync(volume)).toEqual([]);
    rmSync(path.join(image, 'efficientnet_b0.onnx'));
    expect(seed().stderr).toContain('no model (*.onnx)');
    expect(runScript('seed-models.sh', [image]).status).toBe(2);
  });

  it('a copy that fails half-way leaves no model file and no temporary file behind', () => {
    rmSync(path.join(image, 'efficientnet_b0.onnx'));
    mkdirSync(path.join(image, 'efficientnet_b0.onnx')); // cp refuses a directory: the model copy fails
    const run = seed();
    expect(run.status).not.toBe(0);
    expect(readdirSync(volume)).toEqual(['efficientnet_b0.json']); // the sidecar alone is harmless
  });

  it.skipIf(isRoot())('fails with a clear message on a read-only volume directory, leaving no partial file', () => {
    chmodSync(volume, 0o555);
    try {
      const run = seed();
      expect(run.status).toBe(1);
      expect(run.stderr).toContain('is not a writable directory');
      expect(existsSync(path.join(volume, 'efficientnet_b0.onnx'))).toBe(false);
    } finally {
      chmodSync(volume, 0o755);
    }
  });
  if (isRoot()) console.log('seed-models: read-only directory test skipped: root may write into any directory');
});
