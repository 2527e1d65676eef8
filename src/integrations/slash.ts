// POST /v1/integrations/slash: the `/api-keys` chat command (Slack-style form posts, signed with
// HMAC-SHA256 over `v0:<timestamp>:<body>`, 5-minute window, each signature accepted once).
// Replies are ephemeral: only the person who typed the command sees them.
import { createHmac, timingSafeEqual } from 'node:crypto';
import { Type } from '@sinclair/typebox';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError } from '../errors.js';
import { withErrors } from '../http/common.js';
import type { AppService } from '../apps/service.js';
import type { KeyService } from '../keys/service.js';
import type { Clock } from '../lib/clock.js';
import type { ReplayGuard } from '../shared/replay.js';
import type { Actor } from '../store/repos/index.js';

const WINDOW_SEC = 300;
/** A signature is remembered for the whole span of timestamps accepted around it (±WINDOW_SEC). */
const REPLAY_TTL_MS = 2 * WINDOW_SEC * 1000;
const LIST_LIMIT = 20;
type RawRequest = FastifyRequest & { rawBody?: string };

const Reply = Type.Object({ response_type: Type.Literal('ephemeral'), text: Type.String() });

const HELP = [
  '*/api-keys* — your API keys',
  '• `/api-keys generate [name]` — create a key for you (shown once, only to you)',
  '• `/api-keys list` — your keys (never their values)',
  '• `/api-keys delete <key start or id>` — revoke one of your keys (immediate)',
  '• `/api-keys help` — this help',
].join('\n');

export interface SlashRouteServices {
  apps: AppService;
  keys: KeyService;
  replay: ReplayGuard;
  clock: Clock;
  signingSecret: string | undefined;
  /** The Keyward app that chat users' keys belong to. */
  appId: string | undefined;
}

export const slashRoutes = ({ apps, keys, replay, clock, signingSecret, appId }: SlashRouteServices) => async (fastify: FastifyInstance) => {
  fastify.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string', bodyLimit: 16 * 1024 }, (req, body, done) => {
    (req as RawRequest).rawBody = body as string;
    done(null, Object.fromEntries(new URLSearchParams(body as string)));
  });

  fastify.post('/v1/integrations/slash', {
    schema: {
      tags: ['integrations'], summary: 'Chat slash command /api-keys (generate | list | help)', security: [],
      description: 'Slack-style form post signed with `X-Slack-Signature: v0=<hex HMAC-SHA256 of "v0:<ts>:<body>">` and `X-Slack-Request-Timestamp`. Configure KEYWARD_SLASH_SIGNING_SECRET and KEYWARD_SLASH_APP_ID.',
      consumes: ['application/x-www-form-urlencoded'],
      body: Type.Object({
        command: Type.String({ maxLength: 64 }),
        text: Type.Optional(Type.String({ maxLength: 1000 })),
        user_id: Type.String({ minLength: 1, maxLength: 64 }),
        team_id: Type.Optional(Type.String({ maxLength: 64 })),
      }, { additionalProperties: true }),
      response: withErrors({ 200: Reply }),
    },
    preValidation: async (req) => {
      const secret = signingSecret;
      if (!secret || !appId) throw new AppError('NOT_FOUND', 'Slash commands are not configured on this server');
      const ts = req.headers['x-slack-request-timestamp'];
      const sig = req.headers['x-slack-signature'];
      const raw = (req as RawRequest).rawBody;
      const now = clock.now();
      const nowSec = Math.floor(now / 1000);
      if (typeof ts !== 'string' || typeof sig !== 'string' || raw === undefined || !/^\d{1,12}$/.test(ts) || Math.abs(nowSec - Number(ts)) > WINDOW_SEC) {
        throw new AppError('UNAUTHORIZED', 'Missing, stale or future request timestamp or signature');
      }
      const expected = Buffer.from(`v0=${createHmac('sha256', secret).update(`v0:${ts}:${raw}`).digest('hex')}`);
      const given = Buffer.from(sig);
      if (given.length !== expected.length || !timingSafeEqual(given, expected)) throw new AppError('UNAUTHORIZED', 'Bad request signature');
      // The same signed request twice inside the window is a replay.
      if (!(await replay.firstSeen(`slash:${sig}`, REPLAY_TTL_MS, now))) throw new AppError('UNAUTHORIZED', 'This request was already handled (replay)');
    },
  }, async (req) => {
    const body = req.body as { command: string; text?: string; user_id: string; team_id?: string };
    const [verb = 'help', ...rest] = (body.text ?? '').trim().split(/\s+/).filter(Boolean);
    const ownerId = `chat:${body.team_id ?? 'default'}:${body.user_id}`;
    const reply = (text: string) => ({ response_type: 'ephemeral' as const, text });
    // The server may name an app that is not there (deleted, or another store): say so in chat.
    const app = await apps.get(appId!).catch((err: unknown) => {
      if (err instanceof AppError && err.code === 'NOT_FOUND') return null;
      throw err;
    });
    if (!app) return reply('This Keyward server\'s slash commands point at an app that does not exist (KEYWARD_SLASH_APP_ID). Ask an admin to create the app (console or `keyward apps create`) and set its id.');
    const actor: Actor = { type: 'chat', id: ownerId, ip: req.ip ?? null, userAgent: null };

    if (verb === 'generate') {
      const name = rest.join(' ').slice(0, 200) || `${body.user_id}'s key`;
      const created = await keys.create(app, actor, { name, ownerId, meta: { createdVia: 'chat' } });
      return reply(`Here is your new key *${name}*. Copy it now — it will not be shown again:\n\`${created.value}\``);
    }
    if (verb === 'delete') {
      const which = rest[0]?.replace(/…$/, '');
      if (!which) return reply('Say which key: `/api-keys delete <key start or id>` (see `/api-keys list`).');
      // Only this chat user's own keys can be named here.
      const { rows } = await keys.list(app.id, { ownerId, status: 'active' }, { page: 1, limit: 100 });
      const matches = rows.filter((k) => k.id === which || k.start === which);
      if (matches.length === 0) return reply(`No active key of yours is \`${which}\`. Try \`/api-keys list\`.`);
      if (matches.length > 1) return reply(`Several of your keys start with \`${which}\`; give the key id instead.`);
      const revoked = await keys.revoke(await keys.get(matches[0]!.id), actor);
      return reply(`Revoked *${revoked.name}* \`${revoked.start}…\`. It stops working everywhere at once.`);
    }
    if (verb === 'list') {
      const { rows, total } = await keys.list(app.id, { ownerId }, { page: 1, limit: LIST_LIMIT });
      if (rows.length === 0) return reply('You have no keys yet. Try `/api-keys generate`.');
      const more = total > rows.length ? [`…and ${total - rows.length} more (newest shown).`] : [];
      return reply(['Your keys:', ...rows.map((k) => `• *${k.name}* \`${k.start}…\` — ${k.status}, created ${k.createdAt.slice(0, 10)}`), ...more].join('\n'));
    }
    return reply(verb === 'help' ? HELP : `Unknown command \`${verb}\`.\n${HELP}`);
  });
};
