// Every verdict of verify, in the order verify reaches it, with what it means. Pure data: the
// server derives its codes from it, docs/api.md's order and the console's explanations follow it.
export const VERIFY_STEPS = [
  { code: 'MALFORMED', stage: 'credential', explain: 'This is not a Keyward key: wrong shape or checksum. No lookup was made.' },
  { code: 'NOT_FOUND', stage: 'credential', explain: 'No key has this value in the scope verify was asked about (the app, or the verify root key\'s workspace).' },
  { code: 'INVALID_SIGNATURE', stage: 'credential', explain: 'The JWT is not signed HS256 with this key\'s secret.' },
  { code: 'TOKEN_EXPIRED', stage: 'credential', explain: 'The JWT is expired, not yet valid, or too old.' },
  { code: 'REVOKED', stage: 'key', explain: 'The key was revoked. Revocation is permanent.' },
  { code: 'DISABLED', stage: 'key', explain: 'The key exists but is disabled; enable it to accept it again.' },
  { code: 'EXPIRED', stage: 'key', explain: 'The key, or this rolled value of it, has expired.' },
  { code: 'IP_NOT_ALLOWED', stage: 'key', explain: 'The caller address is not in the key\'s IP allowlist (or none was sent).' },
  { code: 'RESOURCE_FORBIDDEN', stage: 'key', explain: 'The resource is outside the key\'s domain scope.' },
  { code: 'INSUFFICIENT_PERMISSIONS', stage: 'key', explain: 'The key lacks a permission the request asked for.' },
  { code: 'RATE_LIMITED', stage: 'limit', explain: 'The key or its owner made too many requests in the current window.' },
  { code: 'USAGE_EXCEEDED', stage: 'limit', explain: 'The key has used up its usage cap.' },
  { code: 'VALID', stage: 'accepted', explain: 'The key is accepted.' },
] as const;

export type VerifyCode = (typeof VERIFY_STEPS)[number]['code'];

/** Every verdict code, in check order. */
export const VERIFY_CODES: readonly VerifyCode[] = VERIFY_STEPS.map((s) => s.code);

/** What each verdict means, typed so a new code without an explanation does not compile. */
export const VERIFY_EXPLANATIONS = Object.fromEntries(VERIFY_STEPS.map((s) => [s.code, s.explain])) as Record<VerifyCode, string>;
