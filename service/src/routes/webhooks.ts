// POST /webhooks/erpnext: ERPNext's Webhook doctype tells the API that an Item changed (after_insert, on_update,
// on_trash). No API key: the request is signed instead (access `hmac`), X-Frappe-Webhook-Signature =
// base64(HMAC-SHA256(ERPNEXT_WEBHOOK_SECRET, body)), checked over the exact bytes in constant time before
// anything else. Frappe sends json.dumps(data) without a Content-Type unless the Webhook adds one, so in this
// route's scope every body is read raw (up to 64 KiB) whatever its type. The answer is 202 at once; the Item is
// re-read from ERPNext and reconciled in the background (erpnext/webhook.ts). A replayed request only causes
// one more idempotent reconcile, so none is refused.
import type { FastifyPluginAsync } from 'fastify';
import { FRAPPE_SIGNATURE_HEADER, verifyFrappeSignature } from '../erpnext/signature.js';
import { itemNameOf, type ItemQueue } from '../erpnext/webhook.js';
import { ServiceError } from '../errors.js';
import { route } from '../http/routes.js';
import { WebhookAccepted, WebhookBody } from '../schemas/api.js';

/** Frappe's bodies here are a few bytes; anything larger is refused (413) before it is read. */
const WEBHOOK_BODY_BYTES = 64 * 1024;

export const webhookRoutes: FastifyPluginAsync<{ secret: string; queue: ItemQueue }> = async (
  app,
  { secret, queue },
) => {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: WEBHOOK_BODY_BYTES }, (_request, body, done) =>
    done(null, body),
  );

  app.post(
    '/webhooks/erpnext',
    route({
      operationId: 'erpnextWebhook',
      summary: 'ERPNext Webhook: an Item changed; it is re-read from ERPNext and reconciled in the background.',
      description:
        'Signed by Frappe: header X-Frappe-Webhook-Signature = base64(HMAC-SHA256(ERPNEXT_WEBHOOK_SECRET, raw ' +
        'body)). Set up one Webhook per event (after_insert, on_update, on_trash) on DocType Item with the ' +
        'request body `{"name": "{{ doc.name }}"}`.',
      tags: ['erpnext'],
      access: 'hmac',
      raw: WebhookBody,
      errors: ['invalid_signature'],
      response: { 202: WebhookAccepted },
    }),
    async (request, reply) => {
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      if (!verifyFrappeSignature(secret, body, request.headers[FRAPPE_SIGNATURE_HEADER])) {
        throw new ServiceError(
          'invalid_signature',
          'Missing or wrong X-Frappe-Webhook-Signature: give the ERPNext Webhook the Webhook Secret that ' +
            'ERPNEXT_WEBHOOK_SECRET holds.',
        );
      }
      let name: string;
      try {
        name = itemNameOf(body);
      } catch (error) {
        throw new ServiceError('invalid_request', (error as Error).message);
      }
      const outcome = queue.push(name);
      return reply.code(202).send({ item_id: name, queued: outcome !== 'dropped' });
    },
  );
};
