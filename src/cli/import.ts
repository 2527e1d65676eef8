// `keyward keys import <file.ndjson>`: keys issued elsewhere, one JSON object a line ({"key": …} or
// {"hash": …} plus the usual fields), sent in calls of up to 1,000. Each call is all or nothing and
// a value already imported is left as it is, so a run stopped by a bad line is fixed and run again.
import fs from 'node:fs';
import { Option, type Command } from 'commander';
import type { ImportKeyInput, KeywardClient } from '../sdk/client.js';
import { KeywardError } from '../sdk/client.js';
import { readStdin, UsageError } from './format.js';

/** Kept under the route's body limit at the default KEYWARD_BODY_LIMIT (4 × 256 KiB). */
const MAX_BATCH_BYTES = 768 * 1024;

export interface ImportCliDeps {
  client(): KeywardClient;
  json(): boolean;
}

interface Line {
  line: number;
  entry: ImportKeyInput;
  bytes: number;
}

/** Every non-blank line as an object, or a UsageError naming the first line that is not one. */
function parseNdjson(text: string): Line[] {
  const lines: Line[] = [];
  text.split('\n').forEach((raw, i) => {
    const trimmed = raw.trim();
    if (trimmed === '') return;
    let entry: unknown;
    try {
      entry = JSON.parse(trimmed);
    } catch {
      throw new UsageError(`line ${i + 1}: not JSON`);
    }
    if (entry === null || typeof entry !== 'object' || Array.isArray(entry)) throw new UsageError(`line ${i + 1}: not a JSON object`);
    lines.push({ line: i + 1, entry: entry as ImportKeyInput, bytes: Buffer.byteLength(trimmed) + 1 });
  });
  return lines;
}

/** Consecutive calls of at most `size` entries and MAX_BATCH_BYTES of JSON. */
function batches(lines: Line[], size: number): Line[][] {
  const out: Line[][] = [];
  let current: Line[] = [];
  let bytes = 0;
  for (const l of lines) {
    if (current.length > 0 && (current.length >= size || bytes + l.bytes > MAX_BATCH_BYTES)) {
      out.push(current);
      current = [];
      bytes = 0;
    }
    current.push(l);
    bytes += l.bytes;
  }
  if (current.length > 0) out.push(current);
  return out;
}

export function registerImportCommand(keys: Command, deps: ImportCliDeps): void {
  keys.command('import <file>')
    .description('import keys issued elsewhere from NDJSON (one {"key" | "hash", name, ...} a line; "-" reads stdin); the app needs importKeys on')
    .addOption(new Option('--app <appId>', 'app id').env('KEYWARD_APP_ID').makeOptionMandatory())
    .option('--batch <n>', 'keys per call (1-1000)', '1000')
    .action(async (file: string, opts: { app: string; batch: string }) => {
      const size = Number(opts.batch);
      if (!Number.isInteger(size) || size < 1 || size > 1000) throw new UsageError('--batch must be a whole number from 1 to 1000');
      let text: string;
      try {
        text = file === '-' ? await readStdin() : fs.readFileSync(file, 'utf8');
      } catch (err) {
        throw new UsageError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
      }
      const lines = parseNdjson(text);
      if (lines.length === 0) throw new UsageError(`${file} holds no keys`);
      const api = deps.client();
      const done: { line: number; id: string; status: 'created' | 'existing' }[] = [];
      let created = 0;
      let existing = 0;
      for (const batch of batches(lines, size)) {
        try {
          const result = await api.keys.import(opts.app, batch.map((l) => l.entry));
          created += result.created;
          existing += result.existing;
          for (const d of result.data) done.push({ line: batch[d.index]!.line, id: d.id, status: d.status });
        } catch (err) {
          if (!(err instanceof KeywardError) || err.code !== 'VALIDATION_FAILED' || !err.problem.errors) throw err;
          // Say which lines of the file, not which entries of the call.
          for (const e of err.problem.errors) {
            const m = /^body\/keys\/(\d+)(?:\/(.*))?$/.exec(e.path);
            const where = m ? `line ${batch[Number(m[1])]?.line ?? '?'}${m[2] ? `: ${m[2]}` : ''}` : e.path;
            process.stderr.write(`keyward: ${where}: ${e.message}\n`);
          }
          process.stderr.write(`keyward: nothing of lines ${batch[0]!.line}-${batch[batch.length - 1]!.line} was imported; ${created} key(s) of earlier lines were. Fix those lines and run again: keys already imported are left as they are.\n`);
          process.exitCode = 1;
          return;
        }
        if (!deps.json()) process.stderr.write(`${done.length}/${lines.length} line(s) done\n`);
      }
      if (deps.json()) process.stdout.write(JSON.stringify({ created, existing, data: done }, null, 2) + '\n');
      else process.stdout.write(`imported ${created} new key(s); ${existing} were there already\n`);
    });
}
