// First-run setup, login, and accepting an invitation.
import { useState, type FormEvent } from 'react';
import { api, ApiError, type SessionInfo } from '../../api';
import { useApi } from '../../query';
import { navigate } from '../../router';
import { useSession } from '../../state';
import { Button, ErrorNote, Field } from '../../ui';

/** An invitation token kept while its invitee logs in first (this tab only). */
const PENDING_INVITE = 'keyward.invite';

function AuthCard({ title, lead, children }: { title: string; lead: React.ReactNode; children: React.ReactNode }) {
  return (
    <main className="auth-page">
      <div className="card auth-card">
        <div className="logo" style={{ color: 'var(--ink)', marginBottom: 18 }}><span className="logo-mark" aria-hidden="true">K</span>Keyward</div>
        <h1>{title}</h1>
        <p>{lead}</p>
        {children}
      </div>
    </main>
  );
}

interface InvitationInfo {
  workspace: { name: string };
  email: string;
  role: string;
  expiresAt: string;
}

/** Posts a form that answers with a session, then opens the console. */
function useSessionForm<T>(path: string, initial: T) {
  const { signedIn } = useSession();
  const [form, setForm] = useState(initial);
  const [error, setError] = useState<unknown>();
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    try {
      signedIn(await api<SessionInfo>('POST', path, form));
      // Logged in to accept an invitation: back to it.
      navigate(sessionStorage.getItem(PENDING_INVITE) ? '/accept-invite' : '/apps', true);
    } catch (err) {
      // Someone finished setup meanwhile: logging in is what is left.
      if (err instanceof ApiError && err.problem.code === 'CONFLICT') navigate('/login', true);
      setError(err);
    } finally {
      setBusy(false);
    }
  };
  return { form, setForm, error, busy, submit };
}

export function Setup() {
  const { form, setForm, error, busy, submit } = useSessionForm('/v1/setup', { email: '', password: '', workspaceName: '' });
  return (
    <AuthCard title="Welcome to Keyward" lead="Create the first account and workspace. You can invite your team afterwards.">
      <form className="stack" onSubmit={submit}>
        <Field label="Workspace name" htmlFor="ws"><input id="ws" required value={form.workspaceName} onChange={(e) => setForm({ ...form, workspaceName: e.target.value })} placeholder="Acme" /></Field>
        <Field label="Email" htmlFor="email"><input id="email" type="email" required autoComplete="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} /></Field>
        <Field label="Password" htmlFor="password" hint="At least 10 characters"><input id="password" type="password" required minLength={10} autoComplete="new-password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} /></Field>
        <ErrorNote error={error} />
        <Button kind="primary" type="submit" disabled={busy}>{busy ? 'Creating…' : 'Create account'}</Button>
      </form>
    </AuthCard>
  );
}

export function Login() {
  const { form, setForm, error, busy, submit } = useSessionForm('/v1/auth/login', { email: '', password: '' });
  return (
    <AuthCard title="Log in" lead="Manage your API keys, apps and secrets.">
      <form className="stack" onSubmit={submit}>
        <Field label="Email" htmlFor="email"><input id="email" type="email" required autoComplete="email" value={form.email} onChange={(e) => setForm({ ...form, email: e.target.value })} /></Field>
        <Field label="Password" htmlFor="password"><input id="password" type="password" required autoComplete="current-password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} /></Field>
        <ErrorNote error={error} />
        <Button kind="primary" type="submit" disabled={busy}>{busy ? 'Logging in…' : 'Log in'}</Button>
      </form>
    </AuthCard>
  );
}

interface Accepted {
  workspace: { id: string; name: string; role: string };
  session?: SessionInfo;
}

/** /accept-invite#token=…: a new email chooses its password; an existing account accepts logged in. */
export function AcceptInvite() {
  const { me, signedIn, refresh, setWorkspace } = useSession();
  const [token] = useState(() => {
    const fromLink = new URLSearchParams(location.hash.slice(1)).get('token');
    if (fromLink) {
      sessionStorage.setItem(PENDING_INVITE, fromLink);
      history.replaceState(null, '', '/accept-invite');
    }
    return fromLink ?? sessionStorage.getItem(PENDING_INVITE) ?? '';
  });
  const [form, setForm] = useState({ name: '', password: '' });
  const [error, setError] = useState<unknown>();
  const [needsLogin, setNeedsLogin] = useState(false);
  // Which workspace this joins, as the server knows it (never taken from the link).
  const info = useApi(['invitation', token], () => api<InvitationInfo>('POST', '/v1/invitations/inspect', { token }), Boolean(token));
  const joins = info.data ? <><strong>{info.data.workspace.name}</strong> as {info.data.role === 'admin' ? 'an admin' : `a ${info.data.role}`}</> : 'the workspace';
  const [busy, setBusy] = useState(false);
  const accept = async (e?: FormEvent) => {
    e?.preventDefault();
    setBusy(true);
    setError(undefined);
    try {
      const body = me ? { token } : { token, password: form.password, ...(form.name ? { name: form.name } : {}) };
      const done = await api<Accepted>('POST', '/v1/invitations/accept', body);
      sessionStorage.removeItem(PENDING_INVITE);
      if (done.session) signedIn(done.session);
      else await refresh();
      setWorkspace(done.workspace.id);
      navigate('/apps', true);
    } catch (err) {
      if (err instanceof ApiError && err.problem.code === 'UNAUTHORIZED' && !me) setNeedsLogin(true);
      else setError(err);
    } finally {
      setBusy(false);
    }
  };
  if (!token) return <AuthCard title="Invitation" lead="This link holds no invitation. Ask for a new one."><span /></AuthCard>;
  if (info.error) {
    return <AuthCard title="Invitation no longer valid" lead="This invitation was used, revoked or has expired. Ask whoever invited you for a new link."><Button kind="ghost" onClick={() => navigate('/login')}>Go to log in</Button></AuthCard>;
  }
  if (needsLogin) {
    return (
      <AuthCard title="Log in to accept" lead={<>An account with the invited email exists. Log in with it, and you will come back here to join {joins}.</>}>
        <Button kind="primary" onClick={() => navigate('/login')}>Log in</Button>
      </AuthCard>
    );
  }
  if (me) {
    return (
      <AuthCard title={info.data ? `Join ${info.data.workspace.name}` : 'Join the workspace'} lead={<>You are invited to {joins}.{info.data && <> The invitation is for {info.data.email}.</>} You are logged in as {me.user.email}: the invitation must be for this email.</>}>
        <ErrorNote error={error} />
        <Button kind="primary" disabled={busy} onClick={() => void accept()}>{busy ? 'Joining…' : 'Accept invitation'}</Button>
      </AuthCard>
    );
  }
  return (
    <AuthCard title={info.data ? `Join ${info.data.workspace.name}` : 'You are invited'} lead={<>You are invited to {joins}.{info.data && <> The invitation is for {info.data.email}.</>} Choose your password to create your account and join. If you already have an account, log in first.</>}>
      <form className="stack" onSubmit={accept}>
        <Field label="Your name" htmlFor="inv-name"><input id="inv-name" autoComplete="name" value={form.name} onChange={(e) => setForm({ ...form, name: e.target.value })} /></Field>
        <Field label="Password" htmlFor="inv-password" hint="At least 10 characters"><input id="inv-password" type="password" required minLength={10} autoComplete="new-password" value={form.password} onChange={(e) => setForm({ ...form, password: e.target.value })} /></Field>
        <ErrorNote error={error} />
        <Button kind="primary" type="submit" disabled={busy}>{busy ? 'Joining…' : 'Create account and join'}</Button>
        <Button kind="ghost" onClick={() => navigate('/login')}>I already have an account</Button>
      </form>
    </AuthCard>
  );
}
