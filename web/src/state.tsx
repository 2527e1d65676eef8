// Who is signed in and which workspace is open, shared by every page.
import { createContext, useCallback, useContext, useEffect, useState, type ReactNode } from 'react';
import { api, session, type SessionInfo, type Workspace } from './api';
import { queryClient } from './query';
import { grants, ROLE_PERMISSIONS, type Permission, type Role } from '../../src/auth/permissions';

interface Ctx {
  me: SessionInfo | null;
  loading: boolean;
  workspace: Workspace | null;
  setWorkspace(id: string): void;
  signedIn(info: SessionInfo): void;
  signOut(): Promise<void>;
  refresh(): Promise<void>;
  toast(text: string): void;
  /** Whether the signed-in user's role in the open workspace allows this (the server checks again). */
  can(permission: Permission): boolean;
}

const SessionContext = createContext<Ctx | null>(null);
const WS = 'keyward.workspace';

/** Whom the stored session token belongs to; nobody without one, or when the server refuses it. */
async function whoAmI(): Promise<SessionInfo | null> {
  if (!session.token) return null;
  try {
    return await api<SessionInfo>('GET', '/v1/auth/me');
  } catch {
    return null;
  }
}

export function SessionProvider({ children }: { children: ReactNode }) {
  const [me, setMe] = useState<SessionInfo | null>(null);
  const [loading, setLoading] = useState(true);
  const [workspaceId, setWorkspaceId] = useState<string | null>(localStorage.getItem(WS));
  const [message, setMessage] = useState<string | null>(null);

  const refresh = useCallback(async () => {
    setMe(await whoAmI());
    setLoading(false);
  }, []);

  useEffect(() => {
    let live = true;
    void whoAmI().then((info) => {
      if (!live) return;
      setMe(info);
      setLoading(false);
    });
    const onLogout = () => setMe(null);
    window.addEventListener('keyward:logout', onLogout);
    return () => {
      live = false;
      window.removeEventListener('keyward:logout', onLogout);
    };
  }, []);

  const workspace = me?.workspaces.find((w) => w.id === workspaceId) ?? me?.workspaces[0] ?? null;
  const value: Ctx = {
    me,
    loading,
    workspace,
    setWorkspace(id) {
      localStorage.setItem(WS, id);
      setWorkspaceId(id);
    },
    signedIn(info) {
      if (info.token) session.set(info.token);
      // Nothing read as someone else may be shown to this user.
      queryClient.clear();
      setMe(info);
    },
    async signOut() {
      try {
        await api('POST', '/v1/auth/logout');
      } catch {
        // The session may already be gone; signing out locally is what matters.
      }
      session.set(null);
      queryClient.clear();
      setMe(null);
    },
    refresh,
    can(permission) {
      const role = workspace?.role as Role | undefined;
      return role !== undefined && role in ROLE_PERMISSIONS && grants(ROLE_PERMISSIONS[role], permission);
    },
    toast(text) {
      setMessage(text);
      setTimeout(() => setMessage(null), 2500);
    },
  };
  return (
    <SessionContext.Provider value={value}>
      {children}
      {message && <div className="toast" role="status">{message}</div>}
    </SessionContext.Provider>
  );
}

export function useSession(): Ctx {
  const ctx = useContext(SessionContext);
  if (!ctx) throw new Error('useSession outside SessionProvider');
  return ctx;
}

/** Loads data for a page and reloads it on demand. */
