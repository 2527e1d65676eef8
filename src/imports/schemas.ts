// TypeBox schemas of the key import (pure: the console, the SDK and the CLI derive their types from them).
import { Type } from '@sinclair/typebox';
import { StringEnum } from '../http/schema.js';
import { KEY_FIELDS, optionalAll } from '../keys/schemas.js';

/** Keys one import call may carry. */
export const MAX_IMPORT_KEYS = 1000;
/** The shortest plaintext accepted: anything shorter is guessable and should be rolled instead. */
const MIN_IMPORTED_KEY_LENGTH = 16;

export const ImportKeyEntry = Type.Object({
  key: Type.Optional(Type.String({
    minLength: MIN_IMPORTED_KEY_LENGTH, maxLength: 256, pattern: '^[\\x21-\\x7e]+$',
    description: 'The key as your callers send it (16–256 visible ASCII characters). Give `key` or `hash`, not both. Only its SHA-256 is stored.',
    examples: ['sk_legacy_7Hq2xVb9Lm4Nc8Zr1Kd5Tw3Y'],
  })),
  hash: Type.Optional(Type.String({
    minLength: 43, maxLength: 64,
    description: 'The SHA-256 of the key, as 64 hexadecimal digits or 32 bytes in base64 / base64url: for keys whose plaintext you no longer have.',
    examples: ['9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08'],
  })),
  start: Type.Optional(Type.String({ minLength: 1, maxLength: 24, description: 'Hashed keys: what the console shows of the key (e.g. the first characters your old system showed). Plaintext keys: the first 4 characters.' })),
  name: Type.Optional(KEY_FIELDS.name),
  ...optionalAll((({ name: _name, ...rest }) => rest)(KEY_FIELDS)),
  createdAt: Type.Optional(Type.String({ format: 'date-time', description: 'When the key was issued in the old system (not in the future); default now', examples: ['2024-03-01T09:00:00.000Z'] })),
}, { additionalProperties: false });

export const ImportKeysBody = Type.Object({
  keys: Type.Array(ImportKeyEntry, { minItems: 1, maxItems: MAX_IMPORT_KEYS }),
}, { additionalProperties: false });

const ImportedKeyResult = Type.Object({
  index: Type.Integer({ minimum: 0, description: 'Position of the entry in `keys`' }),
  id: Type.String({ description: 'The key id, new or already there' }),
  status: StringEnum(['created', 'existing'] as const, { description: '`existing`: this app already had a key with this value; nothing was changed' }),
});

export const ImportKeysAnswer = Type.Object({
  created: Type.Integer({ minimum: 0 }),
  existing: Type.Integer({ minimum: 0 }),
  data: Type.Array(ImportedKeyResult),
});
