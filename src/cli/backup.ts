// `keyward backup <file>` and `keyward restore <file>`: the embedded store, online and consistent,
// with a manifest beside the backup naming the master key it needs (which is never in it).
import path from 'node:path';
import type { Command } from 'commander';
import { loadConfig } from '../config.js';
import { UsageError } from './format.js';

const NOT_EMBEDDED = 'DATABASE_URL names a PostgreSQL store: back it up with pg_dump and restore it with pg_restore (docs/backup.md); keep the master key beside it';

export function registerBackupCommands(program: Command): void {
  program.command('backup <file>')
    .description('back up the embedded store while it serves (SQLite online backup); writes <file> and <file>.json')
    .action(async (file: string) => {
      const config = loadConfig();
      if (config.databaseUrl) throw new UsageError(NOT_EMBEDDED);
      const { backupSqlite, manifestPath } = await import('../store/backup.js');
      const manifest = await backupSqlite(config.dataDir, file, Date.now());
      const rows = Object.values(manifest.tables).reduce((a, b) => a + b, 0);
      process.stdout.write(`backed up ${config.dataDir} to ${path.resolve(file)} (${manifest.bytes} bytes, ${rows} rows, sha256 ${manifest.sha256})\n`);
      process.stdout.write(`manifest: ${manifestPath(path.resolve(file))}\n`);
      process.stdout.write(manifest.masterKeyId
        ? `The master key is NOT in this backup. Its secrets open only with master key ${manifest.masterKeyId} (KEYWARD_MASTER_KEY, or ${path.join(config.dataDir, 'master.key')}): keep a copy of it apart from the backup.\n`
        : 'The master key is NOT in this backup (no secrets were sealed yet); keep KEYWARD_MASTER_KEY or master.key apart from it.\n');
    });

  program.command('restore <file>')
    .description('restore a backup into an empty data directory (KEYWARD_DATA_DIR), with the master key it was made with')
    .action(async (file: string) => {
      const config = loadConfig();
      if (config.databaseUrl) throw new UsageError(NOT_EMBEDDED);
      const fs = await import('node:fs');
      const { decodeMasterKey, keyId } = await import('../lib/secretbox.js');
      const { restoreSqlite } = await import('../store/backup.js');
      // The key this node will run with: configured, or master.key already in the data directory.
      // Never a new one: a restored store without its key has secrets nobody can open.
      const keyFile = path.join(config.dataDir, 'master.key');
      const current = config.masterKey ?? (fs.existsSync(keyFile) ? fs.readFileSync(keyFile, 'utf8') : undefined);
      const ids = current === undefined ? [] : [keyId(decodeMasterKey(current)), ...config.previousMasterKeys.map((k) => keyId(decodeMasterKey(k, 'KEYWARD_MASTER_KEY_PREVIOUS')))];
      const manifest = await restoreSqlite(file, config.dataDir, { masterKeyIds: ids });
      process.stdout.write(`restored ${path.resolve(file)} into ${config.dataDir}${manifest.createdAt ? ` (backup of ${manifest.createdAt})` : ''}; start the server with the same master key${manifest.masterKeyId ? ` (${manifest.masterKeyId})` : ''}\n`);
    });
}
