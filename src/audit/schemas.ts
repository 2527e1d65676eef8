// TypeBox schema of an audit entry (pure: shared with the console).
import { Type } from '@sinclair/typebox';
import { Nullable } from '../http/schema.js';

export const AuditView = Type.Object({
  id: Type.String(), at: Type.String({ format: 'date-time' }),
  actor: Type.Object({ type: Type.String(), id: Type.String(), email: Type.Optional(Type.String({ description: 'When the actor is a user' })) }),
  action: Type.String({ examples: ['key.revoke'] }),
  target: Type.Object({ type: Type.String(), id: Type.String() }),
  ip: Nullable(Type.String()), userAgent: Nullable(Type.String()),
  meta: Type.Object({}, { additionalProperties: true }),
});
