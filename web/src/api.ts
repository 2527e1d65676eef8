// The console speaks only the public API: this wrapper adds the session token and turns
// problem+json answers into ApiError.
export interface Problem {
  status: number;
  code: string;
  title: string;
  detail: string;
  errors?: { path: string; message: string }[];
}

export class ApiError extends Error {
  constructor(readonly problem: Problem) {
    super(problem.detail || problem.title);
  }
}

const TOKEN = 'keyward.session';

export const session = {
  get token(): string | null {
    return localStorage.getItem(TOKEN);
  },
  set(token: string | null): void {
    if (token) localStorage.setItem(TOKEN, token);
    else localStorage.removeItem(TOKEN);
  },
};

export interface Raw {
  status: number;
  ok: boolean;
  headers: Headers;
  text: string;
  json: unknown;
  ms: number;
}

/** A request as the playground sends it: any method, path and body, with or without the session. */
export async function raw(method: string, path: string, body?: string, headers: Record<string, string> = {}): Promise<Raw> {
  const started = performance.now();
  const res = await fetch(path, { method, headers: { ...(body ? { 'content-type': 'application/json' } : {}), ...headers }, body: body || undefined });
  const text = await res.text();
  let json: unknown;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = undefined;
  }
  return { status: res.status, ok: res.ok, headers: res.headers, text, json, ms: Math.round(performance.now() - started) };
}

export async function api<T>(method: string, path: string, body?: unknown): Promise<T> {
  const headers: Record<string, string> = {};
  if (session.token) headers.authorization = `Bearer ${session.token}`;
  const res = await raw(method, path, body === undefined ? undefined : JSON.stringify(body), headers);
  if (!res.ok) {
    if (res.status === 401 && session.token) {
      session.set(null);
      window.dispatchEvent(new Event('keyward:logout'));
    }
    throw new ApiError((res.json as Problem) ?? { status: res.status, code: 'INTERNAL', title: 'Request failed', detail: res.text });
  }
  return res.json as T;
}

import type * as Api from '../../src/api/types';

/** The server's own types (derived from its schemas), so console and API cannot drift apart. */
export type App = Api.App;
export type Key = Api.Key & { key?: string; secret?: string };
export type Workspace = Api.Session['workspaces'][number];
export type SessionInfo = Omit<Api.Session, 'token'> & { token?: string };
export type AuditEntry = Api.AuditEntry;
export type Verdict = Api.Verdict;
export type VerifyCode = Api.VerifyCode;
export interface Page<T> {
  data: T[];
  total: number;
}
