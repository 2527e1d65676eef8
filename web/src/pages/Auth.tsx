// First-run setup and login.
import { useState, type FormEvent } from 'react';
import { api, ApiError, type SessionInfo } from '../api';
import { navigate } from '../router';
import { useSession } from '../state';
import { Button, ErrorNote, Field } from '../ui';

function AuthCard({ title, lead, children }: { title: string; lead: string; children: React.ReactNode }) {
  return (
    <div className="auth-page">
      <div className="card auth-card">
        <div className="logo" style={{ color: 'var(--ink)', marginBottom: 18 }}><span className="logo-mark" aria-hidden="true">K</span>Keyward</div>
        <h1>{title}</h1>
        <p>{lead}</p>
        {children}
      </div>
    </div>
  );
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
      navigate('/apps', true);
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
