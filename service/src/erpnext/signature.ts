// Frappe webhook signatures. A Webhook with "Enable Security" sends the header X-Frappe-Webhook-Signature =
// base64(HMAC-SHA256(secret, body)), where body is the exact bytes it sends (json.dumps(data); see
// get_webhook_headers in frappe/integrations/doctype/webhook/webhook.py, frappe v15). So the check must run over
// the raw request bytes, before any JSON parsing, and compare in constant time.
import crypto from 'node:crypto';

export const FRAPPE_SIGNATURE_HEADER = 'x-frappe-webhook-signature';

// A SHA-256 digest is 32 bytes: 44 base64 characters, the last one '=' padding.
const BASE64_DIGEST = /^[A-Za-z0-9+/]{43}=$/;

const hmac = (secret: string, body: Buffer | string) =>
  crypto.createHmac('sha256', Buffer.from(secret, 'utf8')).update(body).digest();

/** The header value Frappe sends for `body` (the exact request bytes). */
export function signFrappeWebhook(secret: string, body: Buffer | string): string {
  return hmac(secret, body).toString('base64');
}

/**
 * True when `header` is Frappe's signature of `rawBody` under `secret`. A missing, malformed or wrong header is
 * simply false; the comparison of the decoded digests takes the same time wherever they differ.
 */
export function verifyFrappeSignature(secret: string, rawBody: Buffer, header: string | string[] | undefined): boolean {
  if (typeof header !== 'string' || !BASE64_DIGEST.test(header.trim()) || secret.length === 0) return false;
  const given = Buffer.from(header.trim(), 'base64');
  const expected = hmac(secret, rawBody);
  return given.length === expected.length && crypto.timingSafeEqual(given, expected);
}
