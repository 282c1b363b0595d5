// Webhook signatures against Frappe's own code path: a few lines of frappe/integrations/doctype/webhook/webhook.py
// (get_webhook_headers and enqueue_webhook, frappe v15) run with /usr/bin/python3 produce the body and the header;
// the service's verifier must accept exactly those bytes, and the double's webhook sender must send them.
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { signFrappeWebhook, verifyFrappeSignature } from '../../../service/src/erpnext/signature.js';
import { FrappeDouble, pyFloat, pythonJsonDumps, type PyJson } from '../../support/frappe-double.js';

const PYTHON = '/usr/bin/python3';
const SECRET = 'wh-secret-ä-123';

// The same payload twice: as a Python literal (floats written as floats) and as the double's PyJson.
const PYTHON_DATA = `{
  "name": "SKU-001 \\"ü\\"", "doctype": "Item", "item_name": "Grüner Tee 🍵", "item_group": "Teas",
  "modified": "2024-05-01 10:11:12.123456", "disabled": 0, "standard_rate": 12.5, "opening_stock": 0.0,
  "valuation_rate": 1e-05, "big": 1e16, "small": 0.0001, "neg": -0.0, "ratio": 0.1, "image": None,
  "is_stock_item": True, "ctrl": "tab\\there\\nline\\x7f end", "path": "a/b\\\\c",
  "nested": {"a": [1, 2.5, None, False], "empty": {}}, "list": []
}`;
const TS_DATA: PyJson = {
  name: 'SKU-001 "ü"',
  doctype: 'Item',
  item_name: 'Grüner Tee 🍵',
  item_group: 'Teas',
  modified: '2024-05-01 10:11:12.123456',
  disabled: 0,
  standard_rate: 12.5,
  opening_stock: pyFloat(0),
  valuation_rate: 1e-5,
  big: pyFloat(1e16),
  small: 0.0001,
  neg: pyFloat(-0),
  ratio: 0.1,
  image: null,
  is_stock_item: true,
  ctrl: 'tab\there\nline\x7f end',
  path: 'a/b\\c',
  nested: { a: [1, 2.5, null, false], empty: {} },
  list: [],
};

// Copied from webhook.py: the signature in get_webhook_headers, the body in enqueue_webhook.
const FRAPPE_SNIPPET = `
import base64, hashlib, hmac, json, sys
secret = sys.argv[1]
data = ${PYTHON_DATA}
signature = base64.b64encode(
    hmac.new(
        secret.encode("utf8"),
        json.dumps(data).encode("utf8"),
        hashlib.sha256,
    ).digest()
)
body = json.dumps(data, default=str)
sys.stdout.write(json.dumps({"signature": signature.decode(), "body": body}))
`;

const havePython = existsSync(PYTHON);
if (!havePython) console.log(`SKIPPED Frappe webhook parity: ${PYTHON} is not installed, so Frappe's code cannot run`);

describe.skipIf(!havePython)("parity with Frappe's webhook.py (run with python3)", () => {
  const frappe = () =>
    JSON.parse(execFileSync(PYTHON, ['-c', FRAPPE_SNIPPET, SECRET], { encoding: 'utf8' })) as {
      signature: string;
      body: string;
    };

  it('writes the body Frappe sends, byte for byte (json.dumps defaults, ensure_ascii)', () => {
    expect(pythonJsonDumps(TS_DATA)).toBe(frappe().body);
  });

  it("signs it as Frappe does, and the verifier accepts Frappe's header over the raw bytes", () => {
    const { signature, body } = frappe();
    expect(signFrappeWebhook(SECRET, Buffer.from(body, 'utf8'))).toBe(signature);
    expect(verifyFrappeSignature(SECRET, Buffer.from(body, 'utf8'), signature)).toBe(true);
  });

  it("makes the double send exactly Frappe's bytes and header", async () => {
    const { signature, body } = frappe();
    const received: { body: Buffer; headers: http.IncomingHttpHeaders }[] = [];
    const server = http.createServer((request, response) => {
      const chunks: Buffer[] = [];
      request.on('data', (chunk: Buffer) => chunks.push(chunk));
      request.on('end', () => {
        received.push({ body: Buffer.concat(chunks), headers: request.headers });
        response.end();
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const double = await FrappeDouble.start();
    try {
      const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/webhooks/erpnext`;
      await double.sendWebhook({ url, secret: SECRET, data: TS_DATA });
      expect(received[0].body.toString('utf8')).toBe(body);
      expect(received[0].headers['x-frappe-webhook-signature']).toBe(signature);
      expect(verifyFrappeSignature(SECRET, received[0].body, received[0].headers['x-frappe-webhook-signature'])).toBe(
        true,
      );
    } finally {
      await double.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });
});

describe('verifyFrappeSignature', () => {
  const body = Buffer.from('{"name": "A", "event": "on_update"}');
  const header = signFrappeWebhook('secret', body);

  it('accepts the right signature, also around whitespace', () => {
    expect(verifyFrappeSignature('secret', body, header)).toBe(true);
    expect(verifyFrappeSignature('secret', body, ` ${header} `)).toBe(true);
  });

  it('refuses another body, another secret or another signature', () => {
    expect(verifyFrappeSignature('secret', Buffer.from(body.toString().replace('A', 'B')), header)).toBe(false);
    expect(verifyFrappeSignature('secret', Buffer.concat([body, Buffer.from(' ')]), header)).toBe(false);
    expect(verifyFrappeSignature('other', body, header)).toBe(false);
    const flipped = `${header[0] === 'A' ? 'B' : 'A'}${header.slice(1)}`;
    expect(verifyFrappeSignature('secret', body, flipped)).toBe(false);
  });

  it('treats a missing or malformed header, or an empty secret, as invalid without throwing', () => {
    for (const bad of [undefined, '', 'abc', header.slice(0, -1), `${header}=`, header.replace(/.$/, 'A'), [header]]) {
      expect(verifyFrappeSignature('secret', body, bad)).toBe(false);
    }
    expect(verifyFrappeSignature('', body, signFrappeWebhook('', body))).toBe(false);
    // hex of the right digest is the right bytes in the wrong encoding: refused.
    const hex = Buffer.from(header, 'base64').toString('hex');
    expect(verifyFrappeSignature('secret', body, hex)).toBe(false);
  });
});
