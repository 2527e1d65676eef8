// Unbiased random base62 strings and prefixed object ids (ws_, app_, key_ …).
import { randomBytes } from 'node:crypto';
import { ID_PREFIXES, ID_RANDOM_LENGTH, type IdKind } from './ids.js';

export { ID_PREFIXES, idPattern, type IdKind } from './ids.js';

export const BASE62 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';

/** Rejection sampling over random bytes so every character is equally likely. */
export function randomBase62(length: number): string {
  let out = '';
  while (out.length < length) {
    const bytes = randomBytes(Math.ceil((length - out.length) * 1.3) + 4);
    for (const b of bytes) {
      if (b < 248) out += BASE62[b % 62];
      if (out.length === length) break;
    }
  }
  return out;
}

export function newId(kind: IdKind): string {
  return `${ID_PREFIXES[kind]}_${randomBase62(ID_RANDOM_LENGTH)}`;
}
