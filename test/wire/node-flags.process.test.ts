// The server runs with the Node flags it needs (src/lib/node-flags.ts) however it is started:
// `npm start` passes them, `keyward serve` starts the entry point with them, and a plain
// `node dist/main.js` says what it lacks. Real processes, their command lines read from /proc.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { missingServerFlags, SERVER_NODE_FLAGS } from '../../src/lib/node-flags.js';
import { startProcess } from '../support/process.js';

const BIN = path.resolve('dist/cli/main.js');
const dirs: string[] = [];
const dataDir = () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-flags-'));
  dirs.push(dir);
  return dir;
};
afterEach(() => {
  for (const dir of dirs.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
});

/** The command lines of a process's children, from /proc. */
function childCommandLines(pid: number): string[][] {
  const lines: string[][] = [];
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
      if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== pid) continue;
      lines.push(fs.readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').filter(Boolean));
    } catch {
      // gone meanwhile
    }
  }
  return lines;
}

describe('Node flags of the server', () => {
  it('npm start passes every one', () => {
    const start = (JSON.parse(fs.readFileSync('package.json', 'utf8')) as { scripts: { start: string } }).scripts.start.split(/\s+/);
    expect(missingServerFlags(start)).toEqual([]);
    expect(missingServerFlags([])).toEqual([...SERVER_NODE_FLAGS]);
    // Either spelling V8 takes counts, and so does an operator's own value.
    expect(missingServerFlags(['--min_semi_space_size=32'])).toEqual([]);
  });

  it('keyward serve runs the server with them and passes SIGTERM on; plain node dist/main.js warns', async () => {
    const serve = await startProcess({ KEYWARD_DATA_DIR: dataDir() }, undefined, [BIN, 'serve']);
    try {
      const [server, ...others] = childCommandLines(serve.child.pid!);
      expect(others).toEqual([]);
      expect(server).toEqual([process.execPath, ...SERVER_NODE_FLAGS, path.resolve('dist/main.js')]);
      expect((await fetch(`${serve.url}/healthz`)).status).toBe(200);
      expect(serve.output()).not.toContain('Node was started without');
      expect(await serve.kill('SIGTERM')).toBe(0);
      await expect(fetch(`${serve.url}/healthz`)).rejects.toThrow();
    } finally {
      await serve.kill();
    }

    const plain = await startProcess({ KEYWARD_DATA_DIR: dataDir() });
    try {
      // The log line is written asynchronously, around the time the URL is printed.
      await expect.poll(() => plain.output(), { timeout: 5000 }).toContain(`Node was started without ${SERVER_NODE_FLAGS.join(' ')}`);
    } finally {
      await plain.kill('SIGTERM');
    }
  });
});
