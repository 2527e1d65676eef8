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

/** A verdict's position in VERIFY_CODES: counters indexed by verdict use it. */
export const CODE_INDEX: Readonly<Record<VerifyCode, number>> = Object.freeze(
  Object.fromEntries(VERIFY_CODES.map((code, i) => [code, i])) as Record<VerifyCode, number>,
);
