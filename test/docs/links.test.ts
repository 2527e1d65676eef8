// Every relative link in README.md and docs/ leads somewhere: the file exists, and a #fragment names
// a heading of it (as GitHub makes anchors from headings).
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

function markdownFiles(): string[] {
  const docs = fs.readdirSync('docs', { recursive: true }).map((f) => path.join('docs', String(f))).filter((f) => f.endsWith('.md'));
  return ['README.md', 'sdk/README.md', ...docs];
}

/** The text a reader sees as Markdown: fenced blocks and code spans left out. */
function prose(text: string): string {
  return text.replace(/^(```|~~~)[^\n]*\n[^]*?^\1[^\n]*$/gm, '').replace(/`[^`\n]*`/g, '');
}

/** GitHub's anchors: lower case, punctuation dropped, spaces to hyphens, repeats numbered. */
function anchors(file: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  const text = fs.readFileSync(file, 'utf8').replace(/^(```|~~~)[^\n]*\n[^]*?^\1[^\n]*$/gm, '');
  for (const m of text.matchAll(/^#{1,6}\s+(.+?)\s*#*\s*$/gm)) {
    const slug = m[1]!.toLowerCase().replace(/[^\p{L}\p{N}\s_-]/gu, '').replace(/\s/g, '-');
    const n = seen.get(slug) ?? 0;
    seen.set(slug, n + 1);
    out.add(n === 0 ? slug : `${slug}-${n}`);
  }
  return out;
}

describe('documentation links', () => {
  it('every relative link in README.md and docs/ points to an existing file, and every #fragment to a heading', () => {
    const broken: string[] = [];
    let checked = 0;
    for (const file of markdownFiles()) {
      for (const m of prose(fs.readFileSync(file, 'utf8')).matchAll(/\]\(\s*<?([^)\s>]+)>?(?:\s+"[^"]*")?\s*\)/g)) {
        const target = m[1]!;
        if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto: …
        const [pathPart, fragment] = target.split('#') as [string, string | undefined];
        const resolved = pathPart === '' ? file : path.normalize(path.join(path.dirname(file), decodeURIComponent(pathPart)));
        checked++;
        if (!fs.existsSync(resolved)) {
          broken.push(`${file}: ${target} (no ${resolved})`);
        } else if (fragment !== undefined && resolved.endsWith('.md') && !anchors(resolved).has(fragment)) {
          broken.push(`${file}: ${target} (no heading #${fragment} in ${resolved})`);
        }
      }
    }
    expect(broken).toEqual([]);
    expect(checked).toBeGreaterThan(50);
  });

  it('README.md stays a front door', () => {
    expect(fs.readFileSync('README.md', 'utf8').split('\n').length).toBeLessThanOrEqual(250);
  });
});
