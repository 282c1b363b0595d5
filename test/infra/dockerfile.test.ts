// service/Dockerfile and .dockerignore, read instruction by instruction (no Docker engine can run here).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from './synth.js';

interface Instruction {
  op: string;
  args: string;
}
interface Stage {
  from: string;
  name: string;
  body: Instruction[];
}

function parseDockerfile(text: string): { args: Record<string, string>; stages: Stage[] } {
  const lines = text
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const args: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines) {
    const [op, ...rest] = line.split(/\s+/);
    const instruction = { op: op.toUpperCase(), args: rest.join(' ') };
    if (instruction.op === 'FROM') {
      const [image, , name] = rest;
      stages.push({
        from: image.replace(/\$\{(\w+)\}/g, (_, arg: string) => args[arg] ?? ''),
        name: name ?? String(stages.length),
        body: [],
      });
    } else if (stages.length === 0 && instruction.op === 'ARG') {
      const [key, value] = instruction.args.split('=');
      args[key] = value;
    } else {
      stages.at(-1)!.body.push(instruction);
    }
  }
  return { args, stages };
}

const dockerfile = parseDockerfile(readFileSync(path.join(ROOT, 'service/Dockerfile'), 'utf8'));
const stage = (name: string) => dockerfile.stages.find((s) => s.name === name)!;
const all = (s: Stage, op: string) => s.body.filter((i) => i.op === op).map((i) => i.args);
const dockerignore = readFileSync(path.join(ROOT, '.dockerignore'), 'utf8')
  .split('\n')
  .map((l) => l.trim())
  .filter((l) => l && !l.startsWith('#'));

describe('service/Dockerfile', () => {
  it('builds the code, the model and the production dependencies in separate stages', () => {
    expect(dockerfile.stages.map((s) => `${s.name}<-${s.from}`)).toEqual([
      'build<-node:22-bookworm-slim',
      'model<-build',
      'deps<-build',
      'runtime<-node:22-bookworm-slim',
    ]);
  });

  it("converts torchvision's checkpoint with the compiled converter, pretrained or random on request", () => {
    const model = stage('model');
    expect(all(model, 'ARG')).toContain('MODEL_WEIGHTS=pretrained');
    const run = all(model, 'RUN').find((r) => r.includes('model.js'))!;
    expect(run).toContain('random) flags="--random-weights"');
    expect(run).toContain('node dist/scripts/model.js $flags --out /app/models/efficientnet_b0.onnx');
    // the script it runs is compiled by the build stage from the sources that stage copies
    expect(existsSync(path.join(ROOT, 'scripts/model.ts'))).toBe(true);
    expect(all(stage('build'), 'COPY')).toContain('scripts scripts');
    // no stage needs Python's torch any more (the build stage's python3 is node-gyp's)
    expect(dockerfile.stages.flatMap((s) => all(s, 'RUN')).join(' ')).not.toMatch(/torch|export\.py/);
  });

  it("installs dependencies inside the image for its own platform, skipping onnxruntime's CUDA download", () => {
    const build = stage('build');
    expect(all(build, 'ENV')).toContain('ONNXRUNTIME_NODE_INSTALL=skip');
    expect(all(build, 'COPY')[0]).toBe('package.json package-lock.json ./');
    expect(all(build, 'RUN')).toContain('npm ci --no-audit --no-fund');
    expect(all(build, 'RUN')).toContain('npm run build');
    expect(all(stage('deps'), 'RUN')).toEqual(['npm ci --omit=dev --no-audit --no-fund']);
    // nothing is copied wholesale from the host, so no host node_modules can slip in
    const fromHost = dockerfile.stages.flatMap((s) => all(s, 'COPY')).filter((copy) => !copy.startsWith('--from='));
    for (const copy of fromHost) expect(copy).not.toMatch(/^\.\s|node_modules/);
  });

  it('copies only sources that exist and that .dockerignore lets through', () => {
    for (const s of dockerfile.stages) {
      for (const copy of all(s, 'COPY').filter((c) => !c.startsWith('--from='))) {
        const sources = copy.split(/\s+/).slice(0, -1);
        for (const source of sources) {
          expect(existsSync(path.join(ROOT, source)), source).toBe(true);
          expect(
            dockerignore.filter((pattern) => source === pattern || source.startsWith(`${pattern}/`)),
            source,
          ).toEqual([]);
        }
      }
    }
    const script = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).scripts.build;
    expect(script).toBe('tsc -p service/tsconfig.json');
  });

  it('runs as a fixed non-root user with production settings, only built artefacts, and a node healthcheck', () => {
    const runtime = stage('runtime');
    expect(all(runtime, 'USER')).toEqual(['10001:10001']);
    expect(all(runtime, 'ENV').join(' ')).toMatch(/NODE_ENV=production/);
    // The memory settings bench:http measures with (MALLOC_ENV there).
    expect(all(runtime, 'ENV').join(' ')).toMatch(/MALLOC_ARENA_MAX=2 .*MALLOC_TRIM_THRESHOLD_=131072/);
    expect(all(runtime, 'ENV').join(' ')).toMatch(/MODEL_PATH=\/app\/models\/efficientnet_b0\.onnx/);
    expect(all(runtime, 'COPY').every((c) => c.startsWith('--from='))).toBe(true);
    expect(all(runtime, 'COPY')).toEqual(
      expect.arrayContaining([
        '--from=deps /app/node_modules ./node_modules',
        '--from=build /app/dist ./dist',
        '--from=model /app/models ./models',
      ]),
    );
    const healthcheck = all(runtime, 'HEALTHCHECK')[0];
    expect(healthcheck).toContain('CMD ["node", "-e"');
    expect(healthcheck).toContain('/health');
    expect(healthcheck).not.toMatch(/curl|wget/);
    expect(all(runtime, 'CMD')).toEqual(['["node", "dist/service/src/server.js"]']);
    expect(all(runtime, 'EXPOSE')).toEqual(['8020']);
  });

  it('builds the staff page in the build stage and ships it where the compiled page route looks for it', () => {
    expect(all(stage('build'), 'COPY')).toContain('service/web service/web');
    expect(all(stage('build'), 'RUN')).toContain('npm run build:web');
    const copy = all(stage('runtime'), 'COPY').find((c) => c.startsWith('--from=build /app/service/web/dist '));
    expect(copy).toBe('--from=build /app/service/web/dist ./dist/service/web/dist');
    // routes/page.ts finds the page at ../../web/dist from its own directory, compiled or not.
    const source = readFileSync(path.join(ROOT, 'service/src/routes/page.ts'), 'utf8');
    expect(source).toContain("new URL('../../web/dist/', import.meta.url)");
    expect(path.posix.join('dist/service/src/routes', '../../web/dist')).toBe('dist/service/web/dist');
    expect(dockerignore).toContain('service/web/dist');
  });
});

describe('.dockerignore', () => {
  it('keeps host modules, data, build output and secrets out of the build context', () => {
    expect(dockerignore).toEqual(
      expect.arrayContaining(['node_modules', '**/node_modules', 'data', 'dist', 'cdk.out', '.git', '.env']),
    );
  });
});
