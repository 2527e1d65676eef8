// TypeBox schema of a key's usage series (pure: shared with the console).
import { Type } from '@sinclair/typebox';

export const UsageView = Type.Object({
  keyId: Type.String(),
  granularity: Type.String(),
  since: Type.String(),
  until: Type.String(),
  data: Type.Array(Type.Object({
    at: Type.String({ description: 'Start of the bucket' }),
    total: Type.Integer(),
    counts: Type.Record(Type.String(), Type.Integer(), { description: 'Verify outcomes by code', examples: [{ VALID: 120, RATE_LIMITED: 3 }] }),
  })),
});
