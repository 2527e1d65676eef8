// `keyward store copy --to <DATABASE_URL>`: every table of this node's store into another one (the
// embedded store into PostgreSQL, or any store into any store), resumable, checked table by table.
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { UsageError } from './format.js';

export function registerStoreCommands(program: Command): void {
  const store = program.command('store').description('the store: copy it into another one');
  store.command('copy')
    .description('copy every table into another store (stop writes first; resumes after an interruption; checks counts and checksums)')
    .requiredOption('--to <location>', 'the target: postgres://… or sqlite:<data dir>')
    .option('--from <location>', 'the source (default: this node\'s store, DATABASE_URL or KEYWARD_DATA_DIR)')
    .option('--force', 'empty a target that already holds data (or another copy\'s partial target) first')
    .option('--batch <rows>', 'rows per batch', '1000')
    .action(async (opts: { to: string; from?: string; force?: boolean; batch: string }) => {
      const batchRows = Number(opts.batch);
      if (!Number.isInteger(batchRows) || batchRows < 1 || batchRows > 100_000) throw new UsageError('--batch must be a whole number from 1 to 100000');
      const { copyStore, CopyRefused, describeLocation, parseLocation } = await import('../store/copy.js');
      let from;
      let to;
      try {
        to = parseLocation(opts.to);
        const config = opts.from === undefined ? loadConfig() : undefined;
        from = opts.from !== undefined ? parseLocation(opts.from) : config!.databaseUrl ? parseLocation(config!.databaseUrl) : { dialect: 'sqlite' as const, dataDir: config!.dataDir };
      } catch (err) {
        if (err instanceof CopyRefused) throw new UsageError(err.message);
        throw err;
      }
      let report;
      try {
        report = await copyStore(from, to, { force: opts.force === true, batchRows, progress: (line) => process.stdout.write(`${line}\n`) });
      } catch (err) {
        if (err instanceof CopyRefused) throw new UsageError(err.message);
        throw err;
      }
      const rows = report.tables.reduce((n, t) => n + t.rows, 0);
      if (!report.ok) {
        const bad = report.tables.filter((t) => !t.ok).map((t) => t.table);
        process.stderr.write(`keyward: the copy does not match the source in ${bad.join(', ')}: something wrote to a store during the copy. Stop writes, then run again with --force.\n`);
        process.exitCode = 1;
        return;
      }
      process.stdout.write(`copied ${report.tables.length} tables (${rows} rows) into ${describeLocation(to)}; every count and checksum matches${report.skipped.length ? `; not copied: ${report.skipped.join(', ')} (node state)` : ''}\n`);
      if (report.masterKeyId) process.stdout.write(`Start the target's nodes with this store's master key (id ${report.masterKeyId}): KEYWARD_MASTER_KEY, or the content of master.key in the data directory.\n`);
    });
}
