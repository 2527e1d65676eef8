// Users and their sessions (stored by token hash only).
import type { Kysely } from 'kysely';
import type { Database, SessionsTable, UsersTable } from '../schema.js';

export interface SessionRow {
  sessionId: string;
  expiresAt: number;
  userId: string;
  email: string;
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

  async deleteSession(sessionId: string): Promise<void> {
    await this.db.deleteFrom('sessions').where('id', '=', sessionId).execute();
  }
}
