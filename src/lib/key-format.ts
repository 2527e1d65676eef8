// The versioned key format: <prefix>_<live|test>_<32 base62 random><6 base62 CRC32>.
import { crc32 } from 'node:zlib';
import { BASE62, randomBase62 } from './random.js';
import { PREFIX_PATTERN } from './ids.js';

export { PREFIX_PATTERN };

/** The prefix of root keys: reserved, no app may take it. */
export const ROOT_KEY_PREFIX = 'kwroot';

export type Environment = 'live' | 'test';

const RANDOM_LENGTH = 32;
const CHECKSUM_LENGTH = 6;
const PREFIX_RE = new RegExp(PREFIX_PATTERN);
const TAIL_RE = /^[0-9A-Za-z]{38}$/;

/** CRC32 as exactly 6 base62 digits (62^6 > 2^32). */
export function checksum(body: string): string {
  let n = crc32(body);
  let out = '';
  for (let i = 0; i < CHECKSUM_LENGTH; i++) {
    out = BASE62[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

/** The key shown in docs and examples: a well-formed value (its checksum holds) that no store issues. */
export const EXAMPLE_KEY = exampleKey('acme', 'live', '3fK9pQ2mZ8xR4tY7uW1vN6bL0cJ5hG3d');

function exampleKey(prefix: string, environment: Environment, random: string): string {
  const body = `${prefix}_${environment}_${random}`;
  return body + checksum(body);
}

export interface GeneratedKey {
  plaintext: string;
  /** Display form: prefix, environment and the first 4 random characters. */
  start: string;
}

export function generateKey(prefix: string, environment: Environment): GeneratedKey {
  if (!PREFIX_RE.test(prefix)) throw new Error(`invalid key prefix ${prefix}`);
  const body = `${prefix}_${environment}_${randomBase62(RANDOM_LENGTH)}`;
  const plaintext = body + checksum(body);
  return { plaintext, start: plaintext.slice(0, prefix.length + environment.length + 2 + 4) };
}

export interface ParsedKey {
  prefix: string;
  environment: Environment;
}

/** Checks shape and checksum without any storage access; null means MALFORMED. */
export function parseKey(value: string): ParsedKey | null {
  if (value.length > 64) return null;
  const last = value.lastIndexOf('_');
  if (last < 0) return null;
  const tail = value.slice(last + 1);
  const envSep = value.lastIndexOf('_', last - 1);
  if (envSep < 0) return null;
  const environment = value.slice(envSep + 1, last);
  if (environment !== 'live' && environment !== 'test') return null;
  const prefix = value.slice(0, envSep);
  if (!TAIL_RE.test(tail) || !PREFIX_RE.test(prefix)) return null;
  const body = value.slice(0, value.length - CHECKSUM_LENGTH);
  if (checksum(body) !== tail.slice(RANDOM_LENGTH)) return null;
  return { prefix, environment };
}
