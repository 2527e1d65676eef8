// The verify answer as JSON, written out by hand: the fields, order and types of the VerifyAnswer
// schema (a property test holds it to the schema's own serializer), at less than half the cost,
// because the scope lists and meta that cached keys share are serialized once, not per request.
import { digits } from '../lib/digits.js';
import type { VerifyResult } from './verify.js';

/** JSON of frozen values, by identity: interned scopes and meta never change, so neither does it. */
const frozenJson = new WeakMap<object, string>();

function sharedJson(value: object): string {
  let json = frozenJson.get(value);
  if (json === undefined) {
    json = JSON.stringify(value);
    if (Object.isFrozen(value)) frozenJson.set(value, json);
  }
  return json;
}

/** A JSON string literal, escaped as JSON requires. */
const quoted = JSON.stringify as (value: string) => string;

export function serializeVerifyResult(r: VerifyResult): string {
  // Ids (`key_…`, `app_…`), `code`, `environment` and the ISO 8601 times are Keyward's own, from
  // alphabets that need no escaping; everything a user wrote goes through JSON.stringify.
  let s = r.valid ? '{"valid":true,"code":"' : '{"valid":false,"code":"';
  s += r.code + '"';
  if (r.keyId !== undefined) s += ',"keyId":"' + r.keyId + '"';
  if (r.appId !== undefined) s += ',"appId":"' + r.appId + '"';
  if (r.name !== undefined) s += ',"name":' + quoted(r.name);
  if (r.ownerId !== undefined) s += ',"ownerId":' + (r.ownerId === null ? 'null' : quoted(r.ownerId));
  if (r.environment !== undefined) s += ',"environment":"' + r.environment + '"';
  if (r.permissions !== undefined) s += ',"permissions":' + sharedJson(r.permissions);
  if (r.resources !== undefined) s += ',"resources":' + sharedJson(r.resources);
  if (r.meta !== undefined) s += ',"meta":' + sharedJson(r.meta);
  if (r.expiresAt !== undefined) s += ',"expiresAt":' + (r.expiresAt === null ? 'null' : '"' + r.expiresAt + '"');
  if (r.remaining !== undefined) s += ',"remaining":' + (r.remaining === null ? 'null' : digits(r.remaining));
  const l = r.ratelimit;
  if (l !== undefined) s += ',"ratelimit":{"limit":' + l.limit + ',"remaining":' + digits(l.remaining) + ',"resetAt":"' + l.resetAt + '"}';
  const named = r.ratelimits;
  if (named !== undefined) {
    s += ',"ratelimits":[';
    for (let i = 0; i < named.length; i++) {
      const n = named[i]!;
      // Limit names are of a pattern that needs no escaping (letters, digits, `_ . -`).
      s += (i === 0 ? '{"name":"' : ',{"name":"') + n.name + '","limit":' + n.limit + ',"remaining":' + digits(n.remaining) + ',"resetAt":"' + n.resetAt + '","exceeded":' + (n.exceeded ? 'true}' : 'false}');
    }
    s += ']';
  }
  const id = r.identity;
  if (id !== undefined) s += ',"identity":{"id":"' + id.id + '","externalId":' + quoted(id.externalId) + ',"meta":' + sharedJson(id.meta) + '}';
  return s + '}';
}
