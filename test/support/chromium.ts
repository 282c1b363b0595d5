// Debian's Chromium for the browser tests (playwright-core drives it; no browser is downloaded): where it is,
// and how it is started. A suite without it skips, saying why.
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = [process.env.CHROMIUM_PATH, '/usr/bin/chromium', '/usr/bin/chromium-browser'].find(
  (candidate): candidate is string => !!candidate && existsSync(candidate),
);

/** Prints why `suite` is skipped when there is no Chromium; true when it can run. */
export function chromiumFor(suite: string): boolean {
  if (!CHROMIUM) console.log(`SKIPPED ${suite}: no Chromium found (apt-get install chromium, or set CHROMIUM_PATH).`);
  return !!CHROMIUM;
}

/** Headless, offline, and a fresh temporary profile (--user-data-dir) per launch: playwright adds both itself. */
export const launchChromium = (): Promise<Browser> =>
  chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  });
