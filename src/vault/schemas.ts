// TypeBox schema of a vault entry as listed (never its value; pure: shared with the console).
import { Type } from '@sinclair/typebox';
import { Nullable } from '../http/schema.js';

export const SecretInfoView = Type.Object({ name: Type.String(), createdAt: Type.String(), updatedAt: Type.String(), updatedBy: Nullable(Type.String()) });
