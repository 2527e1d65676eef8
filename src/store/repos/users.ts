// Users and their sessions (stored by token hash only).
import type { Kysely } from 'kysely';
import type { Database, SessionsTable, UsersTable } from '../schema.js';

export interface SessionRow {
  sessionId: string;
  expiresAt: number;
  userId: string;
  email: string;
}

/** What a login needs to know before the password is checked. */
export interface LoginCandidate {
  user: UsersTable | undefined;
  /** Whether the account proved itself from this network since `since`. */
  known: boolean;
}

export class UserRepo {
  constructor(private readonly db: Kysely<Database>) {}

  async any(): Promise<boolean> {
    return (await this.db.selectFrom('users').select('id').limit(1).executeTakeFirst()) !== undefined;
  }

  find(id: string): Promise<Pick<UsersTable, 'id' | 'email' | 'name'> | undefined> {
    return this.db.selectFrom('users').select(['id', 'email', 'name']).where('id', '=', id).executeTakeFirst();
  }

  findByEmail(email: string): Promise<UsersTable | undefined> {
    return this.db.selectFrom('users').selectAll().where('email', '=', email).executeTakeFirst();
  }

  /** The account of an email, if any, and whether this network is known to it: one query. */
  async loginCandidate(email: string, network: string, since: number): Promise<LoginCandidate> {
    const row = await this.db.selectFrom('users')
      .leftJoin('login_addresses', (join) => join.onRef('login_addresses.user_id', '=', 'users.id')
        .on('login_addresses.network', '=', network).on('login_addresses.last_seen_at', '>', since))
      .selectAll('users').select('login_addresses.network as known_network')
      .where('users.email', '=', email).executeTakeFirst();
    if (!row) return { user: undefined, known: false };
    const { known_network, ...user } = row;
    return { user, known: known_network !== null };
  }

  /** The account proved itself from this network now (first time, or again). */
  async markAddress(userId: string, network: string, now: number): Promise<void> {
    await this.db.insertInto('login_addresses').values({ user_id: userId, network, created_at: now, last_seen_at: now })
      .onConflict((oc) => oc.columns(['user_id', 'network']).doUpdateSet({ last_seen_at: now })).execute();
  }

  async insert(row: UsersTable): Promise<void> {
    await this.db.insertInto('users').values(row).execute();
  }

  async setPasswordHash(id: string, hash: string): Promise<void> {
    await this.db.updateTable('users').set({ password_hash: hash }).where('id', '=', id).execute();
  }

  async insertSession(row: SessionsTable): Promise<void> {
    await this.db.insertInto('sessions').values(row).execute();
  }

  findSession(tokenHash: string): Promise<SessionRow | undefined> {
    return this.db.selectFrom('sessions').innerJoin('users', 'users.id', 'sessions.user_id')
      .select(['sessions.id as sessionId', 'sessions.expires_at as expiresAt', 'users.id as userId', 'users.email'])
      .where('sessions.token_hash', '=', tokenHash).executeTakeFirst();
  }

  async sessionExpiry(sessionId: string): Promise<number | undefined> {
    return (await this.db.selectFrom('sessions').select('expires_at').where('id', '=', sessionId).executeTakeFirst())?.expires_at;
  }

  /** Deletes it; whether it still existed. */
  async deleteSession(sessionId: string): Promise<boolean> {
    const res = await this.db.deleteFrom('sessions').where('id', '=', sessionId).executeTakeFirst();
    return Number(res.numDeletedRows) > 0;
  }
}
