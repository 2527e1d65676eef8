// `keyward identities …`, `keyward overrides …` and `keyward ratelimit …`: identities, their named
// limits and overrides, and the standalone limiter, over the public API.
import { type Command } from 'commander';
import type { KeywardClient } from '../sdk/client.js';
import { parseLimit, printTable, UsageError } from './format.js';

export interface IdentityCliDeps {
  client(): KeywardClient;
  workspaceId(api: KeywardClient, given?: string): Promise<string>;
  out(data: unknown, table?: () => void): void;
}

const collect = (value: string, previous: string[] = []) => [...previous, value];

/** "calls=100/1m" or "calls=100/1m:auto" → a named limit. */
export function parseNamedLimit(text: string): { name: string; limit: number; durationMs: number; autoApply: boolean } {
  const m = /^([A-Za-z0-9][A-Za-z0-9_.-]{0,63})=([^:]+)(:auto)?$/.exec(text.trim());
  if (!m) throw new UsageError(`"${text}" is not a named limit like calls=100/1m or calls=100/1m:auto`);
  return { name: m[1]!, ...parseLimit(m[2]!), autoApply: m[3] !== undefined };
}

function parseMeta(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  let meta: unknown;
  try {
    meta = JSON.parse(text);
  } catch {
    throw new UsageError('--meta must be a JSON object');
  }
  if (meta === null || typeof meta !== 'object' || Array.isArray(meta)) throw new UsageError('--meta must be a JSON object');
  return meta as Record<string, unknown>;
}

const limitsText = (limits: { name: string; limit: number; durationMs: number; autoApply: boolean }[]) =>
  limits.map((l) => `${l.name}=${l.limit}/${l.durationMs / 1000}s${l.autoApply ? ':auto' : ''}`).join(' ');

export function registerIdentityCommands(program: Command, deps: IdentityCliDeps): void {
  const identities = program.command('identities').description('identities (a key\'s ownerId): list, create, show, update, delete');
  identities.command('list').option('--workspace <id>', 'workspace id').option('--search <q>', 'search externalId')
    .option('--page <n>', 'page', '1').option('--limit <n>', 'per page (1-100)', '20')
    .description('identities of the workspace').action(async (opts: { workspace?: string; search?: string; page: string; limit: string }) => {
      const api = deps.client();
      const page = await api.identities.list(await deps.workspaceId(api, opts.workspace), { page: Number(opts.page), limit: Number(opts.limit), ...(opts.search ? { q: opts.search } : {}) });
      deps.out(page, () => {
        printTable(page.data.map((i) => ({ ...i, ratelimits: limitsText(i.ratelimits) || '—' })), ['id', 'externalId', 'ratelimits', 'createdAt']);
        process.stdout.write(`${page.data.length} of ${page.total} identit${page.total === 1 ? 'y' : 'ies'}, page ${opts.page}\n`);
      });
    });
  identities.command('create <externalId>').option('--workspace <id>', 'workspace id').option('--meta <json>', 'JSON object returned by verify with its keys')
    .option('--named <limit>', 'a named limit, e.g. calls=100/1m (":auto" checks it on every verify); repeatable', collect)
    .description('create an identity').action(async (externalId: string, opts: { workspace?: string; meta?: string; named?: string[] }) => {
      const api = deps.client();
      const meta = parseMeta(opts.meta);
      const made = await api.identities.create(await deps.workspaceId(api, opts.workspace), { externalId, ...(meta ? { meta } : {}), ...(opts.named ? { ratelimits: opts.named.map(parseNamedLimit) } : {}) });
      deps.out(made, () => process.stdout.write(`created identity ${made.externalId} (${made.id})\n`));
    });
  identities.command('show <id>').description('an identity').action(async (id: string) => {
    const api = deps.client();
    const identity = await api.identities.get(id);
    deps.out(identity, () => printTable(Object.entries(identity).map(([field, value]) => ({ field, value: typeof value === 'object' ? JSON.stringify(value) : String(value) })), ['field', 'value']));
  });
  identities.command('update <id>').option('--meta <json>', 'JSON object (replaces it)')
    .option('--named <limit>', 'a named limit, e.g. calls=100/1m[:auto]; repeatable (replaces them)', collect)
    .option('--no-named', 'remove every named limit')
    .description('change an identity\'s meta or named limits').action(async (id: string, opts: { meta?: string; named?: string[] | false }) => {
      const api = deps.client();
      const meta = parseMeta(opts.meta);
      const change = { ...(meta ? { meta } : {}), ...(opts.named === false ? { ratelimits: [] } : opts.named ? { ratelimits: opts.named.map(parseNamedLimit) } : {}) };
      if (Object.keys(change).length === 0) throw new UsageError('nothing to change: give --meta or --named');
      const identity = await api.identities.update(id, change);
      deps.out(identity, () => process.stdout.write(`updated identity ${identity.externalId} (${identity.id})\n`));
    });
  identities.command('delete <id>').option('--force', 'delete even though keys name it (they verify without its limits until it is made again)')
    .description('delete an identity').action(async (id: string, opts: { force?: boolean }) => {
      const api = deps.client();
      await api.identities.delete(id, { force: opts.force === true });
      deps.out({ id, deleted: true }, () => process.stdout.write(`deleted identity ${id}\n`));
    });

  const overrides = program.command('overrides').description('overrides of named limits (--name) or of standalone namespaces (--namespace)');
  overrides.command('set').option('--workspace <id>', 'workspace id').option('--name <name>', 'the named limit').option('--namespace <namespace>', 'the standalone limiter\'s namespace')
    .requiredOption('--identifier <id>', 'exact, or ending in * for a prefix').requiredOption('--limit <limit>', 'e.g. 1000/1m')
    .description('set an override (the most specific one wins)').action(async (opts: { workspace?: string; name?: string; namespace?: string; identifier: string; limit: string }) => {
      const api = deps.client();
      const spec = parseLimit(opts.limit);
      if ((opts.name === undefined) === (opts.namespace === undefined)) throw new UsageError('give --name (a named limit) or --namespace (the standalone limiter), not both');
      const set = opts.name !== undefined
        ? await api.identities.overrides.set(await deps.workspaceId(api, opts.workspace), { name: opts.name, identifier: opts.identifier, ...spec })
        : await api.ratelimit.overrides.set({ namespace: opts.namespace!, identifier: opts.identifier, ...spec });
      deps.out(set, () => process.stdout.write(`${set.name} for ${set.identifier}: ${set.limit} per ${set.durationMs / 1000}s\n`));
    });
  overrides.command('list').option('--workspace <id>', 'workspace id').option('--namespaces', 'the standalone limiter\'s overrides')
    .description('list overrides').action(async (opts: { workspace?: string; namespaces?: boolean }) => {
      const api = deps.client();
      const page = opts.namespaces ? await api.ratelimit.overrides.list({ limit: 100 }) : await api.identities.overrides.list(await deps.workspaceId(api, opts.workspace), { limit: 100 });
      deps.out(page, () => printTable(page.data, ['name', 'identifier', 'limit', 'durationMs', 'updatedAt']));
    });
  overrides.command('delete').option('--workspace <id>', 'workspace id').option('--name <name>', 'the named limit').option('--namespace <namespace>', 'the namespace')
    .requiredOption('--identifier <id>', 'as it was set').description('delete an override').action(async (opts: { workspace?: string; name?: string; namespace?: string; identifier: string }) => {
      const api = deps.client();
      if ((opts.name === undefined) === (opts.namespace === undefined)) throw new UsageError('give --name or --namespace, not both');
      if (opts.name !== undefined) await api.identities.overrides.delete(await deps.workspaceId(api, opts.workspace), opts.name, opts.identifier);
      else await api.ratelimit.overrides.delete(opts.namespace!, opts.identifier);
      deps.out({ deleted: true }, () => process.stdout.write('deleted\n'));
    });

  program.command('ratelimit <namespace> <identifier>').requiredOption('--limit <limit>', 'e.g. 10/1m').option('--cost <n>', 'units this request spends', '1')
    .description('count one request against the standalone limiter (a root key with ratelimit:limit); exits 1 when refused')
    .action(async (namespace: string, identifier: string, opts: { limit: string; cost: string }) => {
      const api = deps.client();
      const answer = await api.ratelimit.limit({ namespace, identifier, ...parseLimit(opts.limit), cost: Number(opts.cost) });
      deps.out(answer, () => process.stdout.write(`${answer.success ? 'admitted' : 'refused'}: ${answer.remaining} of ${answer.limit} left until ${new Date(answer.reset).toISOString()}\n`));
      if (!answer.success) process.exitCode = 1;
    });
}
