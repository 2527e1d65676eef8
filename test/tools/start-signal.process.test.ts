// `npm start` under a process manager: a signal sent to npm reaches the server, which shuts down;
// nothing is left running.
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';

const alive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

describe('npm start', () => {
  it('SIGTERM to npm stops the server it started', async () => {
    if (!fs.existsSync(path.resolve('dist/main.js'))) throw new Error('dist is missing: run `npm run build` (npm test does)');
    const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-start-'));
    let server: number | undefined;
    const npm = spawn('npm', ['start', '--silent'], { env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? dataDir, PORT: '0', KEYWARD_DATA_DIR: dataDir, KEYWARD_PASSWORD_COST: '12' }, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      let out = '';
      npm.stdout.on('data', (d: Buffer) => { out += d.toString(); });
      npm.stderr.on('data', (d: Buffer) => { out += d.toString(); });
      await expect.poll(() => /running at http/.test(out), { timeout: 15_000, interval: 100 }).toBe(true);
      // The server is npm's child (or its shell's): found by its parent.
      const children = (pid: number) => fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((p) => {
        try {
          return fs.readFileSync(`/proc/${p}/stat`, 'utf8').split(') ')[1]!.split(' ')[1] === String(pid);
        } catch {
          return false;
        }
      });
      const tree = [...children(npm.pid!), ...children(npm.pid!).flatMap(children)];
      server = tree.find((p) => fs.readFileSync(`/proc/${p}/cmdline`, 'utf8').includes('dist/main.js'));
      expect(server).toBeDefined();
      npm.kill('SIGTERM');
      await expect.poll(() => alive(server!), { timeout: 15_000, interval: 100 }).toBe(false);
      expect(out).toContain('shutting down');
    } finally {
      if (npm.exitCode === null) npm.kill('SIGKILL');
      if (server !== undefined && alive(server)) process.kill(server, 'SIGKILL');
      fs.rmSync(dataDir, { recursive: true, force: true });
    }
  }, 40_000);
});
