// wrk (Debian's package) as the load generator: one thread pinned to its own CPU, requests rotated
// by a generated Lua script, and the server's and wrk's own CPU time read from /proc.
import { execFileSync, spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { cpuMicros } from './lib.mjs';

/**
 * Per CPU, from /proc/stat in ms (USER_HZ is 100 on Linux): time spent running tasks (user, nice,
 * system) and time the hypervisor gave to something else (steal); empty where unreadable.
 */
export function cpuTimes() {
  try {
    return fs.readFileSync('/proc/stat', 'utf8').split('\n').filter((l) => /^cpu\d/.test(l)).map((l) => {
      const f = l.split(/\s+/).map(Number);
      return { busy: (f[1] + f[2] + f[3] + f[6] + f[7]) * 10, steal: f[8] * 10 };
    });
  } catch {
    return [];
  }
}

export function wrkVersion() {
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
    return 'wrk';
  } catch (err) {
    // wrk --version exits 1 after printing its version.
    return err.status === 1 ? 'wrk' : null;
  }
}

const lua = (s) => {
  let eq = '';
  while (s.includes(`]${eq}]`)) eq += '=';
  return `[${eq}[${s}]${eq}]`;
};

/** One wrk run; `bodies`/`headerSets` rotate per request. Same result shape as the autocannon runner. */
export async function loadWrk({ url, path: urlPath = '/v1/keys/verify', method = 'POST', bodies, headerSets, connections = 50, duration = 5, token, pid, cpu }) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'keyward-wrk-'));
  const base = { 'Content-Type': 'application/json', ...(token ? { Authorization: `Bearer ${token}` } : {}) };
  const n = Math.max(bodies?.length ?? 0, headerSets?.length ?? 0, 1);
  const requests = Array.from({ length: n }, (_, i) => {
    const headers = { ...base, ...(headerSets ? headerSets[i % headerSets.length] : {}) };
    const h = Object.entries(headers).map(([k, v]) => `[ ${lua(k)} ] = ${lua(String(v))}`).join(',');
    const b = bodies ? lua(bodies[i % bodies.length]) : 'nil';
    return `function() return wrk.format(${lua(method)}, ${lua(urlPath)}, {${h}}, ${b}) end`;
  });
  const script = path.join(dir, 'run.lua');
  fs.writeFileSync(script, `
-- Built on the first request: wrk sets the Host header only once the thread is set up.
local makers = {${requests.join(',\n')}}
local reqs = nil
local i = 0
request = function()
  if reqs == nil then
    reqs = {}
    for k, make in ipairs(makers) do reqs[k] = make() end
  end
  i = i + 1
  return reqs[(i % #reqs) + 1]
end
done = function(summary, latency, requests)
  io.write(string.format("KEYWARD %d %d %d %d %d %d\\n", summary.requests, summary.errors.status,
    summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout,
    latency:percentile(50), latency:percentile(99), summary.duration))
end
`);
  const pids = pid === undefined ? [] : Array.isArray(pid) ? pid : [pid];
  const cpuOf = () => pids.reduce((sum, p) => sum + cpuMicros(p), 0);
  const cpu0 = cpuOf();
  const times0 = cpuTimes();
  const t0 = performance.now();
  const args = ['-t1', `-c${connections}`, `-d${duration}s`, '--latency', '-s', script, url];
  const child = cpu === undefined ? spawn('wrk', args) : spawn('taskset', ['-c', String(cpu), 'wrk', ...args]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (out += d));
  let clientUs = 0;
  // wrk's own CPU, read just before it exits (its /proc entry is gone after).
  const sampler = setInterval(() => {
    try {
      clientUs = cpuMicros(child.pid);
    } catch { /* exited */ }
  }, 200);
  await new Promise((resolve) => child.on('exit', resolve));
  clearInterval(sampler);
  fs.rmSync(dir, { recursive: true, force: true });
  const m = /KEYWARD (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(out);
  if (!m) throw new Error(`wrk said: ${out}`);
  const [total, non2xx, errors, p50us, p99us, durUs] = m.slice(1).map(Number);
  const wallUs = (performance.now() - t0) * 1000;
  const serverUs = pids.length ? cpuOf() - cpu0 : NaN;
  const times1 = cpuTimes();
  return {
    cpuPerReq: serverUs / (total || 1),
    serverCore: serverUs / wallUs,
    clientPerReq: clientUs / (total || 1),
    rps: total / (durUs / 1e6),
    p50: Math.round(p50us / 100) / 10,
    p99: Math.round(p99us / 100) / 10,
    non2xx,
    errors,
    total,
    /** Per CPU, ms the hypervisor ran something else during the run. */
    steal: times1.map((t, i) => t.steal - times0[i].steal),
    /** Per CPU, ms spent running tasks (all of them: the server's, the load generator's, anyone's). */
    busy: times1.map((t, i) => t.busy - times0[i].busy),
  };
}
