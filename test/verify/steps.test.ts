// The verdict table (steps.ts) is the one source of verify's order: the key checks, the codes the
// API publishes and the order sentence in docs/api.md all follow it.
import fs from 'node:fs';
import { describe, expect, it } from 'vitest';
import { KEY_CHECKS } from '../../src/verify/checks.js';
import { VERIFY_CODES, VERIFY_EXPLANATIONS, VERIFY_STEPS } from '../../src/verify/steps.js';
import { VerifyAnswer } from '../../src/verify/routes.js';

describe('verify steps', () => {
  it('the key checks run in the order of the key stage of the table', () => {
    expect(KEY_CHECKS.map((c) => c.code)).toEqual(VERIFY_STEPS.filter((s) => s.stage === 'key').map((s) => s.code));
  });

  it('every code has an explanation and the answer schema publishes exactly these codes', () => {
    for (const code of VERIFY_CODES) expect(VERIFY_EXPLANATIONS[code].length).toBeGreaterThan(10);
    expect((VerifyAnswer.properties.code as unknown as { enum: string[] }).enum).toEqual([...VERIFY_CODES]);
  });

  it("docs/api.md's order sentence names the refusals in the table's order", () => {
    const readme = fs.readFileSync('docs/api.md', 'utf8');
    const sentence = /Checks run in this order[^]*?(?=\n\n|\n- )/.exec(readme)?.[0] ?? '';
    const named = [...sentence.matchAll(/`([A-Z_]+)`/g)].map((m) => m[1]);
    const refusals = VERIFY_CODES.filter((c) => c !== 'VALID');
    expect(named.filter((c) => refusals.includes(c as never))).toEqual(refusals);
  });
});
