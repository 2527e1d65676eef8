// Standard Webhooks signatures on the sending side: secrets `whsec_<base64>`, and the
// `webhook-signature` header made by the specification's reference library (standardwebhooks).
// The receiver-side check is in receiver.ts; the tests hold the two to each other.
import { randomBytes } from 'node:crypto';
import { Webhook } from 'standardwebhooks';

const SECRET_BYTES = 32;

export function newWebhookSecret(): string {
  return 'whsec_' + randomBytes(SECRET_BYTES).toString('base64');
}

/** The `webhook-signature` header: one signature per secret in use, space-separated. */
export function signatureHeader(secrets: readonly string[], id: string, timestampSec: number, body: string): string {
  const at = new Date(timestampSec * 1000);
  return secrets.map((s) => new Webhook(s).sign(id, at, body)).join(' ');
}
