// Backup and restore of the embedded store. A backup is SQLite's online backup of the live file, taken
// in one step (one read snapshot, so it is consistent while the server writes), made standalone (no
// WAL beside it), checked, and described by a manifest beside it: its SHA-256, row counts and the id
// (fingerprint) of the master key its secrets are sealed with. The master key itself is never in it.
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { sqlitePath } from './paths.js';

const MANIFEST_FORMAT = 'keyward-backup';

export interface BackupManifest {
  format: typeof MANIFEST_FORMAT;
  version: 1;
  createdAt: string;
  /** The backup file's name (the manifest sits beside it as `<file>.json`). */
  file: string;
  bytes: number;
  sha256: string;
  /** Id of the master key that seals its secrets (the first 8 hex of its SHA-256); null if none yet. */
  masterKeyId: string | null;
  /** Migrations applied to it, oldest first. */
  migrations: string[];
  /** Rows per table. */
  tables: Record<string, number>;
}

class BackupRefused extends Error {}

export const manifestPath = (file: string): string => `${file}.json`;

async function openSqlite(file: string, readonly: boolean) {
  const { default: SQLite } = await import('better-sqlite3');
  return new SQLite(file, { fileMustExist: true, readonly });
}

function sha256File(file: string): string {
  const hash = createHash('sha256');
  const fd = fs.openSync(file, 'r');
  try {
    const buf = Buffer.alloc(1 << 20);
    for (let n; (n = fs.readSync(fd, buf, 0, buf.length, null)) > 0;) hash.update(buf.subarray(0, n));
  } finally {
    fs.closeSync(fd);
  }
  return hash.digest('hex');
}

function fsyncFile(file: string): void {
  const fd = fs.openSync(file, 'r');
  try {
    fs.fsyncSync(fd);
  } finally {
    fs.closeSync(fd);
  }
}

/** What a store file holds: integrity, master key id, migrations and row counts. */
async function describe(file: string): Promise<Pick<BackupManifest, 'masterKeyId' | 'migrations' | 'tables'>> {
  const db = await openSqlite(file, true);
  try {
    const check = db.pragma('integrity_check', { simple: true });
    if (check !== 'ok') throw new BackupRefused(`${file} fails SQLite's integrity check: ${String(check)}`);
    const names = (db.prepare(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`).all() as { name: string }[]).map((r) => r.name);
    if (!names.includes('settings') || !names.includes('keys')) throw new BackupRefused(`${file} is not a Keyward store`);
    const tables: Record<string, number> = {};
    for (const name of names) if (!name.startsWith('kysely_')) tables[name] = (db.prepare(`SELECT count(*) AS n FROM "${name.replace(/"/g, '""')}"`).get() as { n: number }).n;
    const key = db.prepare(`SELECT value FROM settings WHERE name = 'master_key_id'`).get() as { value: string } | undefined;
    const migrations = names.includes('kysely_migration')
      ? (db.prepare('SELECT name FROM kysely_migration ORDER BY name').all() as { name: string }[]).map((r) => r.name)
      : [];
    return { masterKeyId: key?.value ?? null, migrations, tables };
  } finally {
    db.close();
  }
}

/**
 * Backs the embedded store in `dataDir` up to `file` (which must not exist), while the server keeps
 * serving, and writes the manifest beside it.
 */
export async function backupSqlite(dataDir: string, file: string, now: number): Promise<BackupManifest> {
  const source = sqlitePath(dataDir);
  if (!fs.existsSync(source)) throw new BackupRefused(`no embedded store at ${source}`);
  const target = path.resolve(file);
  if (fs.existsSync(target) || fs.existsSync(manifestPath(target))) throw new BackupRefused(`${target} (or its manifest) exists already; give a new file name`);
  if (!fs.existsSync(path.dirname(target))) throw new BackupRefused(`the directory ${path.dirname(target)} does not exist`);
  const partial = `${target}.partial`;
  fs.rmSync(partial, { force: true });
  const db = await openSqlite(source, false);
  try {
    db.pragma('busy_timeout = 10000');
    // Every page in one step: one read snapshot, which the server's writes never restart.
    await db.backup(partial, { progress: () => 0x7fffffff });
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  } finally {
    db.close();
  }
  try {
    // Standalone: the copy reads without a -wal file beside it, wherever it is moved.
    const copy = await openSqlite(partial, false);
    try {
      copy.pragma('journal_mode = DELETE');
    } finally {
      copy.close();
    }
    const described = await describe(partial);
    fs.chmodSync(partial, 0o600);
    fsyncFile(partial);
    const manifest: BackupManifest = {
      format: MANIFEST_FORMAT, version: 1, createdAt: new Date(now).toISOString(), file: path.basename(target),
      bytes: fs.statSync(partial).size, sha256: sha256File(partial), ...described,
    };
    fs.renameSync(partial, target);
    fs.writeFileSync(manifestPath(target), JSON.stringify(manifest, null, 2) + '\n', { mode: 0o600 });
    return manifest;
  } catch (err) {
    fs.rmSync(partial, { force: true });
    throw err;
  }
}

export interface RestoreCheck {
  /** Ids of the master keys this process has (KEYWARD_MASTER_KEY and previous ones, or master.key). */
  masterKeyIds: readonly string[];
}

/**
 * Restores `file` into `dataDir`, which must hold no store. Refuses a file that does not match its
 * manifest or fails the integrity check, and a master key that cannot open its secrets.
 */
export async function restoreSqlite(file: string, dataDir: string, check: RestoreCheck): Promise<BackupManifest> {
  const backup = path.resolve(file);
  if (!fs.existsSync(backup)) throw new BackupRefused(`no backup at ${backup}`);
  const target = sqlitePath(dataDir);
  for (const f of [target, `${target}-wal`, `${target}-shm`]) {
    if (fs.existsSync(f)) throw new BackupRefused(`${dataDir} already holds a store (${path.basename(f)}); restore into an empty data directory`);
  }
  let manifest: BackupManifest | null = null;
  if (fs.existsSync(manifestPath(backup))) {
    manifest = JSON.parse(fs.readFileSync(manifestPath(backup), 'utf8')) as BackupManifest;
    if (manifest.format !== MANIFEST_FORMAT) throw new BackupRefused(`${manifestPath(backup)} is not a Keyward backup manifest`);
    if (sha256File(backup) !== manifest.sha256) throw new BackupRefused(`${backup} does not match its manifest (SHA-256 differs): it changed or was cut short`);
  }
  const described = await describe(backup);
  if (described.masterKeyId !== null && !check.masterKeyIds.includes(described.masterKeyId)) {
    throw new BackupRefused(check.masterKeyIds.length === 0
      ? `this backup's secrets are sealed under master key ${described.masterKeyId}: set KEYWARD_MASTER_KEY to that key (or put it in ${path.join(dataDir, 'master.key')}) before restoring`
      : `this backup's secrets are sealed under master key ${described.masterKeyId}, but this node has ${check.masterKeyIds.join(', ')}: set KEYWARD_MASTER_KEY to the key the backup was made with`);
  }
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const partial = `${target}.restoring`;
  fs.copyFileSync(backup, partial);
  fs.chmodSync(partial, 0o600);
  fsyncFile(partial);
  fs.renameSync(partial, target);
  return manifest ?? { format: MANIFEST_FORMAT, version: 1, createdAt: '', file: path.basename(backup), bytes: fs.statSync(target).size, sha256: sha256File(target), ...described };
}
