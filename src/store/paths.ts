// Where the embedded store lives inside the data directory.
import path from 'node:path';

export function sqlitePath(dataDir: string): string {
  return path.join(dataDir, 'keyward.db');
}
