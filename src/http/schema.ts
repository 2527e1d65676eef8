// Schema helpers shared by every API schema: ids, nullables, enums, pages, error responses. Pure
// TypeBox, so the console and the SDK can derive their types from the same schemas.
import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { ID_PREFIXES, idPattern, type IdKind } from '../lib/ids.js';

/**
 * `T | null` as a JSON-schema type array rather than anyOf: the response serializer then checks
 * one type tag instead of running a validator per branch, which matters on the verify hot path.
 */
export const Nullable = <T extends TSchema>(schema: T) => {
  const { type, ...rest } = schema as TSchema & { type?: string };
  if (typeof type !== 'string') return Type.Union([schema, Type.Null()]);
  return Type.Unsafe<Static<T> | null>({ ...rest, type: [type, 'null'] });
};

/** A string enum as `enum` (one lookup) instead of a union of literals (one check per value). */
export const StringEnum = <const T extends readonly string[]>(values: T, options: Record<string, unknown> = {}) =>
  Type.Unsafe<T[number]>({ type: 'string', enum: [...values], ...options });

export const IdOf = (kind: IdKind, description?: string) =>
  Type.String({ pattern: idPattern(kind), description: description ?? `${kind} id`, examples: [`${ID_PREFIXES[kind]}_3kTn8Vw2Xq7Lp0RzB4sM`] });

const ProblemRef = Type.Ref('Problem');

/** Documents the problem+json answers of a route alongside its success schema. */
export function withErrors<T extends Record<number, TSchema>>(ok: T): Record<string, TSchema> {
  return { ...ok, '4xx': ProblemRef, '5xx': ProblemRef };
}

export const PageQuery = {
  page: Type.Optional(Type.Integer({ minimum: 1, maximum: 1_000_000, default: 1, description: 'Page number, from 1' })),
  limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 100, default: 20, description: 'Items per page (1–100)' })),
};

export const Page = <T extends TSchema>(item: T) =>
  Type.Object({ data: Type.Array(item), total: Type.Integer({ minimum: 0 }) });

export const Timestamp = Type.String({ format: 'date-time', examples: ['2026-01-15T12:00:00.000Z'] });
