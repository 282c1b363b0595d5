// Synthesizes the real app (the given context, as -c would give it) into a temporary directory, with the cdk-nag
// checks that infra/stack.ts adds. Each synthesis has its own settings file (never the repository's
// deployment.json) unless a test names one. No AWS account or credentials are involved.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { App } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import type { CloudAssembly } from 'aws-cdk-lib/cx-api';
import type { Settings } from '../../infra/settings.js';
import { buildApp, type ImageSearchStack } from '../../infra/stack.js';

export const ROOT = path.resolve(import.meta.dirname, '../..');
export const CDK_JSON = JSON.parse(readFileSync(path.join(ROOT, 'cdk.json'), 'utf8')) as {
  app: string;
  context?: Record<string, unknown>;
};

export interface Synthesized {
  app: App;
  stack: ImageSearchStack;
  settings: Settings;
  assembly: CloudAssembly;
  template: Template;
  json: {
    Resources: Record<
      string,
      {
        Type: string;
        Properties?: Record<string, unknown>;
        DeletionPolicy?: string;
        UpdateReplacePolicy?: string;
        CreationPolicy?: unknown;
      }
    >;
    Outputs?: Record<string, { Value: unknown }>;
    Parameters?: Record<string, unknown>;
  };
  outdir: string;
  cleanup: () => void;
}

/** `settingsFile` defaults to a fresh file in the output directory (no saved settings). */
export function synth(context: Record<string, unknown> = {}): Synthesized {
  const outdir = mkdtempSync(path.join(tmpdir(), 'erp-cdk-'));
  const app = new App({ outdir, context: { settingsFile: path.join(outdir, 'deployment.json'), ...context } });
  const { stack, settings } = buildApp(app);
  const assembly = app.synth();
  const template = Template.fromStack(stack);
  return {
    app,
    stack,
    settings,
    assembly,
    template,
    json: template.toJSON() as Synthesized['json'],
    outdir,
    cleanup: () => rmSync(outdir, { recursive: true, force: true }),
  };
}

export const resourcesOfType = (s: Synthesized, type: string) =>
  Object.entries(s.json.Resources).filter(([, resource]) => resource.Type === type);

/**
 * Evaluates a CloudFormation string expression enough to read it: Fn::Join joins, Fn::Base64 is left
 * decoded (the text is what matters), Fn::Sub substitutes, Ref and Fn::GetAtt become <Ref:Id> /
 * <GetAtt:Id.Attr>, pseudo
 * parameters <AWS::Region> etc.
 */
export function cfnText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number') return String(value);
  const object = value as Record<string, unknown>;
  if ('Fn::Join' in object) {
    const [separator, parts] = object['Fn::Join'] as [string, unknown[]];
    return parts.map(cfnText).join(separator);
  }
  if ('Fn::Base64' in object) return cfnText(object['Fn::Base64']);
  if ('Fn::Sub' in object && typeof object['Fn::Sub'] === 'string') {
    return object['Fn::Sub'].replace(/\$\{([^}]+)\}/g, (_, name: string) =>
      name.startsWith('AWS::') ? `<${name}>` : `<Ref:${name}>`,
    );
  }
  if ('Ref' in object) {
    const ref = String(object.Ref);
    return ref.startsWith('AWS::') ? `<${ref}>` : `<Ref:${ref}>`;
  }
  if ('Fn::GetAtt' in object) return `<GetAtt:${(object['Fn::GetAtt'] as string[]).join('.')}>`;
  throw new Error(`cannot read ${JSON.stringify(value)}`);
}
