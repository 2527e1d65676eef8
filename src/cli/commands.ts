// The keyward command. Server side: serve, migrate, reencrypt, backup, restore, store copy. Client side (over the public API
// with a root key): login, apps, keys, vault — tables for people, --json for scripts.
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { Command, CommanderError, Option } from 'commander';
import { loadConfig } from '../config.js';
import { KeywardClient, KeywardError } from '../sdk/client.js';
import type * as Api from '../api/types.js';
import { credentials, saveProfile, type Credentials } from './profile.js';
import { parseDuration, parseLimit, printTable, readStdin, UsageError } from './format.js';
import { registerGatewayCommand } from './gateway-check.js';
import { registerImportCommand } from './import.js';
import { registerBackupCommands } from './backup.js';
import { registerStoreCommands } from './store-copy.js';
import { parseNamedLimit, registerIdentityCommands } from './identities.js';

/**
 * Exit codes: 0 done, 1 failed, 2 bad usage, 3 not authenticated or not allowed, 4 not found,
 * 5 nothing done because it was done already (revoking a revoked key).
 */
const EXIT = { failed: 1, usage: 2, auth: 3, notFound: 4, unchanged: 5 } as const;

const program = new Command('keyward')
  .description('Keyward: self-hosted API key management')
  .option('--url <url>', 'server URL (default: KEYWARD_URL, then the saved profile)')
  .option('--root-key <key>', 'root key (default: KEYWARD_ROOT_KEY, then the saved profile)')
  .option('--json', 'print JSON instead of tables')
  .showHelpAfterError()
  .exitOverride();

type Globals = { url?: string; rootKey?: string; json?: boolean };
const globals = (): Globals => program.opts<Globals>();

function client(): { api: KeywardClient; creds: Credentials } {
  const creds = credentials(globals());
  return { api: new KeywardClient({ baseUrl: creds.url, rootKey: creds.rootKey }), creds };
}

function out(data: unknown, table?: () => void): void {
  if (globals().json || !table) process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else table();
}

/** Every list prints the API's own envelope with --json: `{ "data": [...], "total": n }`, paged or not. */
function outList<T extends object>(list: T[] | { data: T[]; total: number }, table: () => void): void {
  out(Array.isArray(list) ? { data: list, total: list.length } : list, table);
}

async function workspaceId(api: KeywardClient, given?: string): Promise<string> {
  if (given) return given;
  const list = await api.workspaces.list();
  if (list.length !== 1) throw new UsageError('this credential sees several workspaces: pass --workspace <id>');
  return list[0]!.id;
}

function appOption(cmd: Command): Command {
  return cmd.addOption(new Option('--app <appId>', 'app id').env('KEYWARD_APP_ID').makeOptionMandatory());
}

// ── server ────────────────────────────────────────────────────────────────────
// Server-side modules load only for these commands: the client commands start in a fraction of the time.
program.command('serve').description('run the server (console and API)').action(async () => {
  const { missingServerFlags } = await import('../lib/node-flags.js');
  const missing = missingServerFlags();
  if (missing.length > 0) {
    // The flags V8 needs are read before any code runs (src/lib/node-flags.ts): run the server's
    // entry point in a Node started with them, passing signals on and its exit code back.
    const { spawn } = await import('node:child_process');
    const child = spawn(process.execPath, [...missing, ...process.execArgv, fileURLToPath(new URL('../main.js', import.meta.url))], { stdio: 'inherit' });
    for (const signal of ['SIGTERM', 'SIGINT', 'SIGHUP'] as const) process.on(signal, () => child.kill(signal));
    const code = await new Promise<number>((resolve) => child.on('exit', (c, signal) => resolve(c ?? (signal ? 128 + (os.constants.signals[signal] ?? 0) : 1))));
    process.exit(code);
  }
  const { serve } = await import('../server.js');
  await serve();
});

program.command('migrate').description('bring the store schema up to date, then exit').action(async () => {
  const { migrate, openStore } = await import('../store/db.js');
  const config = loadConfig();
  const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync });
  const applied = await migrate(store.db);
  await store.close();
  process.stdout.write(applied.length ? `applied: ${applied.join(', ')}\n` : 'the store is up to date\n');
});

program.command('reencrypt')
  .description('re-seal every secret under KEYWARD_MASTER_KEY (old key in KEYWARD_MASTER_KEY_PREVIOUS)')
  .action(async () => {
    const { migrate, openStore } = await import('../store/db.js');
    const { createLogger, openSecretBox } = await import('../deps.js');
    const { reencryptAll } = await import('./reencrypt.js');
    const config = loadConfig();
    const store = await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir, sqliteSync: config.sqliteSync, queryTimeoutMs: config.storeTimeoutMs });
    try {
      await migrate(store.db);
      const box = await openSecretBox(config, store, createLogger(config.logLevel));
      const { secrets, vault, webhooks } = await reencryptAll(store, box);
      process.stdout.write(`re-sealed ${secrets} integration secret(s), ${vault} vault value(s) and ${webhooks} webhook secret(s) under master key ${box.currentId}\n`);
    } finally {
      await store.close();
    }
  });

// ── login ─────────────────────────────────────────────────────────────────────
program.command('login')
  .description('check --url and --root-key (or a key piped on stdin), and save them as your profile (mode 0600)')
  .action(async () => {
    const { url, rootKey: given } = globals();
    if (!url) throw new UsageError('give --url <server URL>');
    const rootKey = given ?? (await readStdin()).trim();
    if (!rootKey) throw new UsageError('give --root-key or pipe the key on stdin');
    const api = new KeywardClient({ baseUrl: url, rootKey });
    const [ws] = await api.workspaces.list();
    const file = saveProfile({ url, rootKey });
    process.stdout.write(`logged in to ${url}${ws ? ` (workspace ${ws.name}, ${ws.id})` : ''}; profile saved to ${file}\n`);
  });

// ── apps ──────────────────────────────────────────────────────────────────────
const apps = program.command('apps').description('apps: list, create');
apps.command('list').option('--workspace <id>', 'workspace id').description('list apps').action(async (opts: { workspace?: string }) => {
  const { api } = client();
  const list = await api.apps.list(await workspaceId(api, opts.workspace));
  outList(list, () => printTable(list, ['id', 'name', 'keyPrefix', 'createdAt']));
});
apps.command('create <name>').option('--workspace <id>', 'workspace id').option('--prefix <prefix>', 'key prefix, e.g. acme')
  .description('create an app').action(async (name: string, opts: { workspace?: string; prefix?: string }) => {
    const { api } = client();
    const app = await api.apps.create({ workspaceId: await workspaceId(api, opts.workspace), name, ...(opts.prefix ? { keyPrefix: opts.prefix } : {}) });
    out(app, () => process.stdout.write(`created app ${app.name} (${app.id}), keys start with ${app.keyPrefix}_\n`));
  });

// ── keys ──────────────────────────────────────────────────────────────────────
const keys = program.command('keys').description('keys: generate, list, show, update, enable, disable, roll, revoke, import');
appOption(keys.command('generate').description('create a key (its value is printed once)'))
  .option('--name <name>', 'key name', 'cli key')
  .option('--owner <ownerId>', 'your user or customer id')
  .addOption(new Option('--env <environment>', 'environment').choices(['live', 'test']))
  .option('--permissions <list>', 'comma-separated permissions')
  .option('--resources <list>', 'comma-separated domain scope')
  .option('--ip <list>', 'comma-separated IP addresses / CIDRs')
  .option('--expires <when>', 'ISO date-time, or a duration from now such as 30d or 12h')
  .option('--ratelimit <limit>', 'per-key limit, e.g. 100/1m')
  .option('--remaining <n>', 'usage cap')
  .option('--named <limit>', 'a named limit, e.g. calls=100/1m (":auto" checks it on every verify); repeatable', (v: string, p: string[] = []) => [...p, v])
  .option('--integration', 'an integration key (id + secret)')
  .action(async (opts: Record<string, string | boolean | string[] | undefined>) => {
    const { api } = client();
    const list = (v: unknown) => (typeof v === 'string' ? v.split(',').map((s) => s.trim()).filter(Boolean) : undefined);
    let expiresAt: string | undefined;
    if (typeof opts.expires === 'string') {
      const ms = /^\d+[smhd]$/.test(opts.expires) ? parseDuration(opts.expires) : Date.parse(opts.expires);
      if (!Number.isFinite(ms)) throw new UsageError(`--expires: "${opts.expires}" is neither a date nor a duration`);
      expiresAt = new Date(/^\d+[smhd]$/.test(opts.expires) ? Date.now() + ms : ms).toISOString();
    }
    const created = await api.keys.create(String(opts.app), {
      name: String(opts.name),
      ...(opts.owner ? { ownerId: String(opts.owner) } : {}),
      ...(opts.env ? { environment: opts.env as 'live' | 'test' } : {}),
      ...(list(opts.permissions) ? { permissions: list(opts.permissions) } : {}),
      ...(list(opts.resources) ? { resources: list(opts.resources) } : {}),
      ...(list(opts.ip) ? { ipAllowlist: list(opts.ip) } : {}),
      ...(expiresAt ? { expiresAt } : {}),
      ...(typeof opts.ratelimit === 'string' ? { ratelimit: parseLimit(opts.ratelimit) } : {}),
      ...(typeof opts.remaining === 'string' ? { remaining: Number(opts.remaining) } : {}),
      ...(opts.integration ? { kind: 'integration' as const } : {}),
      ...(Array.isArray(opts.named) ? { ratelimits: opts.named.map(parseNamedLimit) } : {}),
    });
    out(created, () => {
      process.stdout.write(`created ${created.name} (${created.id})\n`);
      if (created.secret) process.stdout.write(`id:     ${created.id}\nsecret: ${created.secret}\n`);
      else process.stdout.write(`key: ${created.key}\n`);
      process.stdout.write('Store it now: it will not be shown again.\n');
    });
  });
appOption(keys.command('list').description('list keys of an app'))
  .option('--owner <ownerId>', 'only this owner\'s keys')
  .addOption(new Option('--status <status>', 'only this status').choices(['active', 'disabled', 'revoked']))
  .option('--search <q>', 'search name, start, owner')
  .option('--page <n>', 'page', '1')
  .option('--limit <n>', 'per page (1-100)', '20')
  .action(async (opts: { app: string; owner?: string; status?: 'active' | 'disabled' | 'revoked'; search?: string; page: string; limit: string }) => {
    const { api } = client();
    const page = await api.keys.list(opts.app, {
      page: Number(opts.page), limit: Number(opts.limit),
      ...(opts.owner ? { ownerId: opts.owner } : {}), ...(opts.status ? { status: opts.status } : {}), ...(opts.search ? { q: opts.search } : {}),
    });
    outList(page, () => {
      printTable(page.data.map((k) => ({ ...k, start: `${k.start}…`, lastUsedAt: k.lastUsedAt ?? '—', ownerId: k.ownerId ?? '—' })), ['id', 'name', 'start', 'ownerId', 'environment', 'status', 'lastUsedAt']);
      process.stdout.write(`${page.data.length} of ${page.total} key(s), page ${opts.page}\n`);
    });
  });
keys.command('revoke <keyId>').description('revoke a key: immediate and irreversible').action(async (keyId: string) => {
  const { api } = client();
  const before = await api.keys.get(keyId);
  if (before.status === 'revoked') {
    // Not an error, not a success either: a script can tell "already so" from "done" by the code.
    out({ ...before, alreadyRevoked: true }, () => process.stdout.write(`${before.name} (${before.id}) was already revoked on ${before.revokedAt}; nothing changed\n`));
    process.exitCode = EXIT.unchanged;
    return;
  }
  const key = await api.keys.revoke(keyId);
  out(key, () => process.stdout.write(`revoked ${key.name} (${key.id})\n`));
});
keys.command('show <keyId>').description('a key\'s settings (never its value)').action(async (keyId: string) => {
  const { api } = client();
  const key = await api.keys.get(keyId);
  out(key, () => printTable(Object.entries(key).map(([field, value]) => ({ field, value: value === null ? '—' : typeof value === 'object' ? JSON.stringify(value) : String(value) })), ['field', 'value']));
});
for (const [verb, status] of [['enable', 'active'], ['disable', 'disabled']] as const) {
  keys.command(`${verb} <keyId>`).description(`${verb} a key (takes effect on every node at once)`).action(async (keyId: string) => {
    const { api } = client();
    const key = await api.keys.update(keyId, { status });
    out(key, () => process.stdout.write(`${key.name} (${key.id}) is ${key.status}\n`));
  });
}
keys.command('update <keyId>').description('change a key\'s name, owner, scopes, expiry or limits')
  .option('--name <name>', 'key name')
  .option('--owner <ownerId>', 'your user or customer id')
  .option('--permissions <list>', 'comma-separated permissions (replaces them)')
  .option('--resources <list>', 'comma-separated domain scope (replaces it)')
  .option('--ip <list>', 'comma-separated IP addresses / CIDRs (replaces them)')
  .option('--expires <when>', 'ISO date-time, a duration from now such as 30d, or "never"')
  .option('--ratelimit <limit>', 'per-key limit, e.g. 100/1m, or "none"')
  .option('--remaining <n>', 'usage cap, or "none"')
  .option('--named <limit>', 'a named limit, e.g. calls=100/1m[:auto]; repeatable (replaces them)', (v: string, p: string[] = []) => [...p, v])
  .action(async (keyId: string, opts: Record<string, string | undefined> & { named?: string[] }) => {
    const { api } = client();
    const list = (v: string | undefined) => (v === undefined ? undefined : v.split(',').map((x) => x.trim()).filter(Boolean));
    const change: Record<string, unknown> = {};
    if (opts.name !== undefined) change.name = opts.name;
    if (opts.owner !== undefined) change.ownerId = opts.owner;
    if (opts.permissions !== undefined) change.permissions = list(opts.permissions);
    if (opts.resources !== undefined) change.resources = list(opts.resources);
    if (opts.ip !== undefined) change.ipAllowlist = list(opts.ip);
    if (opts.expires !== undefined) {
      if (opts.expires === 'never') change.expiresAt = null;
      else {
        const ms = /^\d+[smhd]$/.test(opts.expires) ? Date.now() + parseDuration(opts.expires) : Date.parse(opts.expires);
        if (!Number.isFinite(ms)) throw new UsageError(`--expires: "${opts.expires}" is neither a date, a duration nor "never"`);
        change.expiresAt = new Date(ms).toISOString();
      }
    }
    if (opts.ratelimit !== undefined) change.ratelimit = opts.ratelimit === 'none' ? null : parseLimit(opts.ratelimit);
    if (opts.remaining !== undefined) change.remaining = opts.remaining === 'none' ? null : Number(opts.remaining);
    if (opts.named !== undefined) change.ratelimits = opts.named.map(parseNamedLimit);
    if (Object.keys(change).length === 0) throw new UsageError('nothing to change: give at least one option (see keyward keys update --help)');
    const key = await api.keys.update(keyId, change);
    out(key, () => process.stdout.write(`updated ${key.name} (${key.id}): ${Object.keys(change).join(', ')}\n`));
  });
keys.command('roll <keyId>').description('give a key a new value (printed once)')
  .option('--grace <duration>', 'how long the old value keeps working, e.g. 10m', '0s')
  .action(async (keyId: string, opts: { grace: string }) => {
    const { api } = client();
    const rolled = await api.keys.roll(keyId, parseDuration(opts.grace));
    out(rolled, () => process.stdout.write(`rolled ${rolled.name} (${rolled.id}); old value works for ${opts.grace}\n${rolled.secret ? `secret: ${rolled.secret}` : `key: ${rolled.key}`}\n`));
  });
registerImportCommand(keys, { client: () => client().api, json: () => globals().json === true });
keys.command('help').description('show help for keys').action(() => keys.outputHelp());

// ── identities, overrides, the standalone limiter ─────────────────────────────
registerIdentityCommands(program, { client: () => client().api, workspaceId, out });

// ── root keys ─────────────────────────────────────────────────────────────────
const rootKeys = program.command('root-keys').description('root keys: create, list, revoke');
rootKeys.command('list').option('--workspace <id>', 'workspace id').description('root keys of the workspace (never their values)').action(async (opts: { workspace?: string }) => {
  const { api } = client();
  const list = await api.rootKeys.list(await workspaceId(api, opts.workspace));
  outList(list, () => printTable(list.map((k) => ({ ...k, permissions: k.permissions.join(','), revokedAt: k.revokedAt ?? '—' })), ['id', 'name', 'start', 'permissions', 'revokedAt']));
});
rootKeys.command('create <name>').option('--workspace <id>', 'workspace id')
  .requiredOption('--permissions <list>', 'comma-separated, e.g. keys:verify or keys:read,keys:write')
  .description('create a root key (its value is printed once)').action(async (name: string, opts: { workspace?: string; permissions: string }) => {
    const { api } = client();
    const created = await api.rootKeys.create(await workspaceId(api, opts.workspace), { name, permissions: opts.permissions.split(',').map((p) => p.trim()).filter(Boolean) });
    out(created, () => process.stdout.write(`created root key ${created.name} (${created.id})\nkey: ${created.key}\nStore it now: it will not be shown again.\n`));
  });
rootKeys.command('revoke <id>').description('revoke a root key (immediate)').action(async (id: string) => {
  const { api } = client();
  await api.rootKeys.revoke(id);
  out({ id, revoked: true }, () => process.stdout.write(`revoked root key ${id}\n`));
});

// ── webhooks ──────────────────────────────────────────────────────────────────
const webhooks = program.command('webhooks').description('webhooks: list, create, show, update, enable, disable, rotate-secret, deliveries, delivery, retry, test, replay, delete');
const eventList = (text: string) => text.split(',').map((e) => e.trim()).filter(Boolean) as Api.WebhookEventType[];
const webhookRow = (w: Api.Webhook) => ({ ...w, events: w.events.join(','), app: w.appId ?? 'all', status: w.status === 'disabled' && w.disabledReason ? `disabled: ${w.disabledReason}` : w.status });
webhooks.command('list').option('--workspace <id>', 'workspace id').description('webhook endpoints of the workspace (never their secrets)').action(async (opts: { workspace?: string }) => {
  const { api } = client();
  const list = await api.webhooks.list(await workspaceId(api, opts.workspace));
  outList(list, () => printTable(list.map(webhookRow), ['id', 'url', 'events', 'app', 'status']));
});
webhooks.command('create <url>').option('--workspace <id>', 'workspace id')
  .requiredOption('--events <list>', 'comma-separated, e.g. key.expiring,key.revoked')
  .option('--app <appId>', 'only events of this app\'s keys')
  .option('--description <text>', 'what it is for')
  .description('add an endpoint (its signing secret is printed once)').action(async (url: string, opts: { workspace?: string; events: string; app?: string; description?: string }) => {
    const { api } = client();
    const created = await api.webhooks.create(await workspaceId(api, opts.workspace), {
      url, events: eventList(opts.events), ...(opts.app ? { appId: opts.app } : {}), ...(opts.description ? { description: opts.description } : {}),
    });
    out(created, () => process.stdout.write(`created webhook ${created.id} → ${created.url}\nsecret: ${created.secret}\nStore it now: it will not be shown again. Verify each delivery's webhook-signature with it.\n`));
  });
webhooks.command('show <id>').description('an endpoint\'s settings').action(async (id: string) => {
  const { api } = client();
  const hook = await api.webhooks.get(id);
  out(hook, () => printTable([webhookRow(hook)], ['id', 'url', 'events', 'app', 'status', 'consecutiveFailures']));
});
webhooks.command('update <id>').option('--url <url>', 'new URL').option('--events <list>', 'comma-separated event types').option('--description <text>', 'what it is for')
  .description('change an endpoint').action(async (id: string, opts: { url?: string; events?: string; description?: string }) => {
    const input: Api.UpdateWebhookInput = {
      ...(opts.url !== undefined ? { url: opts.url } : {}), ...(opts.events !== undefined ? { events: eventList(opts.events) } : {}),
      ...(opts.description !== undefined ? { description: opts.description } : {}),
    };
    if (Object.keys(input).length === 0) throw new UsageError('nothing to change: pass --url, --events or --description');
    const { api } = client();
    const hook = await api.webhooks.update(id, input);
    out(hook, () => process.stdout.write(`updated webhook ${id}\n`));
  });
for (const [verb, status] of [['enable', 'active'], ['disable', 'disabled']] as const) {
  webhooks.command(`${verb} <id>`).description(verb === 'enable' ? 'resume deliveries (those held while disabled go out, in order)' : 'hold deliveries until enabled again (events keep being recorded)').action(async (id: string) => {
    const { api } = client();
    const hook = await api.webhooks.update(id, { status });
    out(hook, () => process.stdout.write(`${verb}d webhook ${id}\n`));
  });
}
webhooks.command('rotate-secret <id>').description('new signing secret (printed once); the old one signs too for 24 hours').action(async (id: string) => {
  const { api } = client();
  const rotated = await api.webhooks.rotateSecret(id);
  out(rotated, () => process.stdout.write(`secret: ${rotated.secret}\nThe previous secret also signs until ${rotated.previousValidUntil}.\n`));
});
webhooks.command('deliveries <id>').addOption(new Option('--status <status>', 'only these').choices(['pending', 'held', 'delivered', 'failed']))
  .option('--limit <n>', 'how many (newest first)', '20')
  .description('recent deliveries with their outcome').action(async (id: string, opts: { status?: Api.WebhookDelivery['status']; limit: string }) => {
    const { api } = client();
    const page = await api.webhooks.deliveries(id, { limit: Number(opts.limit), ...(opts.status ? { status: opts.status } : {}) });
    outList(page, () => printTable(page.data.map((d) => ({ ...d, response: d.responseStatus ?? d.error ?? '—', latency: d.latencyMs === null ? '—' : `${d.latencyMs} ms` })), ['id', 'type', 'status', 'attempts', 'response', 'latency', 'createdAt']));
  });
webhooks.command('delivery <id> <deliveryId>').description('one delivery: every attempt and the body sent').action(async (id: string, deliveryId: string) => {
  const { api } = client();
  const d = await api.webhooks.delivery(id, deliveryId);
  out(d, () => {
    process.stdout.write(`${d.type} ${d.eventId}: ${d.status}\n${d.payload}\n`);
    printTable(d.attemptLog.map((a) => ({ ...a, response: a.responseStatus ?? '—', error: a.error ?? '', latency: `${a.latencyMs} ms` })), ['number', 'attemptedAt', 'outcome', 'response', 'latency', 'error']);
  });
});
webhooks.command('test <id>').description('send a webhook.test event to the endpoint').action(async (id: string) => {
  const { api } = client();
  const d = await api.webhooks.test(id);
  out(d, () => process.stdout.write(`queued webhook.test ${d.eventId} (${d.status})\n`));
});
webhooks.command('replay <id>').requiredOption('--since <time>', 'ISO 8601 date-time').option('--new-ids', 'give each event a new webhook-id (receivers process them again)')
  .description('send again the events the endpoint was sent since a time').action(async (id: string, opts: { since: string; newIds?: boolean }) => {
    const { api } = client();
    const r = await api.webhooks.replay(id, { since: opts.since, ...(opts.newIds ? { newIds: true } : {}) });
    out(r, () => process.stdout.write(`queued ${r.replayed} event(s) again${r.nextSince ? `; more remain: replay again with --since ${r.nextSince}` : ''}\n`));
  });
webhooks.command('retry <id> <deliveryId>').description('send a delivery again now (same webhook-id)').action(async (id: string, deliveryId: string) => {
  const { api } = client();
  const d = await api.webhooks.retry(id, deliveryId);
  out(d, () => process.stdout.write(`queued ${deliveryId} again\n`));
});
webhooks.command('delete <id>').description('remove an endpoint and its deliveries').action(async (id: string) => {
  const { api } = client();
  await api.webhooks.delete(id);
  out({ id, deleted: true }, () => process.stdout.write(`deleted webhook ${id}\n`));
});

// ── vault ─────────────────────────────────────────────────────────────────────
const vault = program.command('vault').description('vault: list, set, get, rm');
appOption(vault.command('list').description('names of the app\'s secrets')).action(async (opts: { app: string }) => {
  const { api } = client();
  const list = await api.vault.list(opts.app);
  outList(list, () => printTable(list, ['name', 'updatedAt', 'updatedBy']));
});
appOption(vault.command('set <name> [value]').description('write a secret (value from stdin when omitted)')).action(async (name: string, value: string | undefined, opts: { app: string }) => {
  const { api } = client();
  const info = await api.vault.set(opts.app, name, value ?? (await readStdin()).replace(/\n$/, ''));
  out(info, () => process.stdout.write(`stored ${info.name}\n`));
});
appOption(vault.command('get <name>').description('reveal a secret (audited)')).action(async (name: string, opts: { app: string }) => {
  const { api } = client();
  const value = await api.vault.get(opts.app, name);
  out({ name, value }, () => process.stdout.write(`${value}\n`));
});
appOption(vault.command('rm <name>').description('delete a secret')).action(async (name: string, opts: { app: string }) => {
  const { api } = client();
  await api.vault.delete(opts.app, name);
  out({ name, deleted: true }, () => process.stdout.write(`deleted ${name}\n`));
});

registerBackupCommands(program);
registerStoreCommands(program);
registerGatewayCommand(program);

function fail(err: unknown): never {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : EXIT.usage);
  if (err instanceof UsageError) {
    process.stderr.write(`keyward: ${err.message}\n`);
    process.exit(EXIT.usage);
  }
  if (err instanceof KeywardError) {
    process.stderr.write(`keyward: ${err.code} (${err.status}): ${err.message}\n`);
    // Each invalid field once: the detail often says it already.
    for (const e of err.problem.errors ?? []) if (!err.message.includes(`${e.path}: ${e.message}`)) process.stderr.write(`  ${e.path}: ${e.message}\n`);
    process.exit(err.status === 401 || err.status === 403 ? EXIT.auth : err.status === 404 ? EXIT.notFound : err.status === 400 ? EXIT.usage : EXIT.failed);
  }
  const e = err as { cause?: { code?: string }; message?: string; name?: string };
  const unreachable = e.message === 'fetch failed' || e.name === 'TimeoutError';
  const detail = unreachable ? `cannot reach the server (is it running? check --url): ${e.cause?.code ?? e.message}` : e.message ?? String(err);
  process.stderr.write(`keyward: ${detail}\n`);
  process.exit(EXIT.failed);
}

program.parseAsync(process.argv).catch(fail);
