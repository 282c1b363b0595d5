// CDK entry point (cdk.json "app"). Settings: the deployment's settings file (default deployment.json), which
// `-c key=value` overrides; after a successful synthesis the result is saved there for the next run.
import { App } from 'aws-cdk-lib';
import { buildApp } from './stack.js';

const app = new App();
const { settings } = buildApp(app);
app.synth();
await settings.save();
const banner = (lines: string[]) => console.error(['', '!'.repeat(100), ...lines, '!'.repeat(100), ''].join('\n'));
if (settings.closing.length) banner(settings.closing.map((message) => `!! ${message}`));
if (settings.changed.length) {
  console.error(
    `Saved settings (${settings.changed.join(', ')}) in ${settings.file}: later deploys reuse them without -c.`,
  );
}
