// Where the CLI finds its server and root key: flags, then KEYWARD_URL / KEYWARD_ROOT_KEY, then
// the profile written by `keyward login` (mode 0600, in $KEYWARD_CONFIG_DIR or ~/.config/keyward).
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

export interface Credentials {
  url: string;
  rootKey: string | undefined;
}

function profilePath(): string {
  const dir = process.env.KEYWARD_CONFIG_DIR ?? path.join(process.env.XDG_CONFIG_HOME ?? path.join(os.homedir(), '.config'), 'keyward');
  return path.join(dir, 'profile.json');
}

export function saveProfile(creds: { url: string; rootKey: string }): string {
  const file = profilePath();
  fs.mkdirSync(path.dirname(file), { recursive: true, mode: 0o700 });
  fs.writeFileSync(file, JSON.stringify(creds, null, 2) + '\n', { mode: 0o600 });
  fs.chmodSync(file, 0o600);
  return file;
}

function readProfile(): Partial<Credentials> {
  try {
    return JSON.parse(fs.readFileSync(profilePath(), 'utf8')) as Partial<Credentials>;
  } catch {
    return {};
  }
}

export function credentials(flags: { url?: string; rootKey?: string }): Credentials {
  const profile = readProfile();
  return {
    url: flags.url ?? process.env.KEYWARD_URL ?? profile.url ?? 'http://localhost:8787',
    rootKey: flags.rootKey ?? process.env.KEYWARD_ROOT_KEY ?? profile.rootKey,
  };
}
