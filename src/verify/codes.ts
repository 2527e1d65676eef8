// The verdicts of POST /v1/keys/verify, indexed for counters (the list itself lives in steps.ts).
import { VERIFY_CODES, type VerifyCode } from './steps.js';

export { VERIFY_CODES, type VerifyCode } from './steps.js';

/** A verdict's position in VERIFY_CODES: counters indexed by verdict use it. */
export const CODE_INDEX: Readonly<Record<VerifyCode, number>> = Object.freeze(
  Object.fromEntries(VERIFY_CODES.map((code, i) => [code, i])) as Record<VerifyCode, number>,
);
