// The verdicts of POST /v1/keys/verify.
export const VERIFY_CODES = [
  'VALID',
  'MALFORMED',
  'NOT_FOUND',
  'DISABLED',
  'REVOKED',
  'EXPIRED',
  'IP_NOT_ALLOWED',
  'RESOURCE_FORBIDDEN',
  'INSUFFICIENT_PERMISSIONS',
  'RATE_LIMITED',
  'USAGE_EXCEEDED',
  'INVALID_SIGNATURE',
  'TOKEN_EXPIRED',
] as const;

export type VerifyCode = (typeof VERIFY_CODES)[number];
