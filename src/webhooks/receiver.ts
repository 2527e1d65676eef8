// What a receiver does with a delivery (the SDK exports it; no dependency beyond node:crypto): the
// Standard Webhooks check of `webhook-signature` against the secret, with a timestamp tolerance.
import { createHmac, timingSafeEqual } from 'node:crypto';

const PREFIX = 'whsec_';

function expected(secret: string, id: string, timestampSec: number, body: string): string {
  const key = Buffer.from(secret.startsWith(PREFIX) ? secret.slice(PREFIX.length) : secret, 'base64');
  return 'v1,' + createHmac('sha256', key).update(`${id}.${timestampSec}.${body}`).digest('base64');
}

/** True when any signature in the header matches and the timestamp is within `toleranceSec` of now. */
export function verifySignature(secret: string, headers: { id: string; timestamp: string; signature: string }, body: string, nowSec = Math.floor(Date.now() / 1000), toleranceSec = 300): boolean {
  const ts = Number(headers.timestamp);
  if (!Number.isInteger(ts) || Math.abs(nowSec - ts) > toleranceSec) return false;
  const want = Buffer.from(expected(secret, headers.id, ts, body));
  return headers.signature.split(' ').some((candidate) => {
    const got = Buffer.from(candidate);
    return got.length === want.length && timingSafeEqual(got, want);
  });
}
