// Runs the real export recipe (models/export.py) with random weights and checks the ONNX file through
// onnxruntime-node against torch's own output. Needs Debian's python3-torch + python3-torchvision.
import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadModel } from '../../service/src/embedding/model.js';
import { EFFICIENTNET_B0_SIDECAR } from '../support/onnx-model.js';

const PYTHON = process.env.EXPORT_PYTHON ?? '/usr/bin/python3';
const probe = spawnSync(PYTHON, ['-c', 'import torch, torchvision'], { encoding: 'utf8' });
const torchMissing = probe.status !== 0;
if (torchMissing) {
  console.log(
    `SKIPPED models/export.py test: ${PYTHON} cannot import torch and torchvision (install python3-torch ` +
      `python3-torchvision).`,
  );
}

describe.skipIf(torchMissing)('models/export.py (random weights)', () => {
  it(
    'writes an EfficientNet-B0 ONNX model + sidecar that onnxruntime runs like torch',
    { timeout: 300_000 },
    async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'export-'));
      try {
        const out = path.join(dir, 'efficientnet_b0.onnx');
        const check = path.join(dir, 'check.json');
        execFileSync(PYTHON, ['models/export.py', '--random-weights', '--out', out, '--check', check], {
          stdio: 'pipe',
        });
        const sidecar = JSON.parse(readFileSync(path.join(dir, 'efficientnet_b0.json'), 'utf8'));
        expect(sidecar).toMatchObject({ ...EFFICIENTNET_B0_SIDECAR, name: 'efficientnet_b0_random' });

        const model = await loadModel(out, { threads: 1 });
        const { shape, input, output } = JSON.parse(readFileSync(check, 'utf8')) as {
          shape: number[];
          input: number[];
          output: number[][];
        };
        const per = shape[1] * shape[2] * shape[3];
        const tensors = output.map((_, i) => Float32Array.from(input.slice(i * per, (i + 1) * per)));
        const vectors = await model.run(tensors); // dynamic batch axis: two at once
        for (const [i, expected] of output.entries()) {
          const norm = Math.hypot(...expected);
          const cosine = vectors[i].reduce((sum, x, j) => sum + x * (expected[j] / norm), 0);
          expect(cosine).toBeGreaterThan(0.9999);
        }
        await model.close();
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
