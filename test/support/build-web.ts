// vitest globalSetup: builds the staff page once before any test file runs, so the page routes and the
// browser tests serve what the sources make now (the build is not committed; it takes well under a second).
import { buildWeb } from '../../scripts/dev/build-web.js';

export default async function setup(): Promise<void> {
  await buildWeb();
}
