// CDK entry point (cdk.json "app"). Settings: cdk.json "context", overridden with -c key=value.
import { App } from 'aws-cdk-lib';
import { buildApp } from './stack.js';

buildApp(new App());
