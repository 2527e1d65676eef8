// The console entry: server state, session, and the route table (routes.tsx).
import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import './styles.css';
import { Layout } from './Layout';
import { Route, Switch } from 'wouter';
import { navigate, usePath } from './router';
import { ROUTES } from './routes';
import { SessionProvider, useSession } from './state';
import { QueryClientProvider } from '@tanstack/react-query';
import { queryClient, useApi } from './query';
import { AcceptInvite, Login, Setup } from './features/auth/Auth';
import { Empty } from './ui';
import { DocsPage } from './features/developers/Reference';

/** Pages anyone may open, signed in or not: no redirect to setup or login. */
const PUBLIC = ['/accept-invite', '/docs'];

function Routes() {
  const path = usePath();
  const { me, loading, workspace } = useSession();
  const setup = useApi(['setup', me?.user.id], () => fetch('/v1/setup').then((r) => r.json() as Promise<{ needsSetup: boolean }>));
  const open = path.startsWith('/setup') || path.startsWith('/login');

  useEffect(() => {
    if (loading || !setup.data || PUBLIC.some((p) => path.startsWith(p))) return;
    if (setup.data.needsSetup && !path.startsWith('/setup')) navigate('/setup', true);
    else if (!setup.data.needsSetup && !me && !path.startsWith('/login')) navigate('/login', true);
    else if (me && (open || path === '/')) navigate('/apps', true);
  }, [loading, setup.data, me, path, open]);

  if (path.startsWith('/accept-invite')) return <AcceptInvite />;
  if (path.startsWith('/docs')) return <DocsPage />;
  if (path.startsWith('/setup')) return <Setup />;
  if (path.startsWith('/login')) return <Login />;
  if (!me || !workspace) return <main className="auth-page"><p>Loading…</p></main>;

  return (
    <Layout>
      <Switch>
        {ROUTES.map((r) => <Route key={r.path} path={r.path}>{(params) => r.render(params)}</Route>)}
        <Route><Empty title="Page not found" /></Route>
      </Switch>
    </Layout>
  );
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <QueryClientProvider client={queryClient}>
      <SessionProvider>
        <Routes />
      </SessionProvider>
    </QueryClientProvider>
  </StrictMode>,
);
