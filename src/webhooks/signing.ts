// Standard Webhooks signatures on the sending side: secrets `whsec_<base64>`, and the
// `webhook-signature` header, `v1,<base64 HMAC-SHA256 of "id.timestamp.body">` keyed by the decoded
// secret. The tests check it with independent implementations (svix, standardwebhooks), not this code.
import { createHmac, randomBytes } from 'node:crypto';

const PREFIX = 'whsec_';
const SECRET_BYTES = 32;

export function newWebhookSecret(): string {
  return PREFIX + randomBytes(SECRET_BYTES).toString('base64');
}

/** The HMAC key of a secret: its base64 part, decoded. */
function secretKey(secret: string): Buffer {
  return Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
}

/** The `webhook-signature` header: one signature per secret in use, space-separated. */
export function signatureHeader(secrets: readonly string[], id: string, timestampSec: number, body: string): string {
  return secrets.map((s) => 'v1,' + createHmac('sha256', secretKey(s)).update(`${id}.${timestampSec}.${body}`).digest('base64')).join(' ');
}
