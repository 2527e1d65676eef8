// The console entry: session, routing, pages.
import { StrictMode, useEffect } from 'react';
import { createRoot } from 'react-dom/client';
import './styles.css';
import { Layout } from './Layout';
import { match, navigate, usePath } from './router';
import { SessionProvider, useLoad, useSession } from './state';
import { AcceptInvite, Login, Setup } from './pages/Auth';
import { Apps } from './pages/Apps';
import { AppKeys } from './pages/AppKeys';
import { KeyDetail } from './pages/KeyDetail';
import { Audit, Members, Vault } from './pages/Workspace';
import { Playground } from './pages/Playground';
import { Reference } from './pages/Reference';
import { Empty } from './ui';

function Routes() {
  const path = usePath();
  const { me, loading, workspace } = useSession();
  const setup = useLoad(() => fetch('/v1/setup').then((r) => r.json() as Promise<{ needsSetup: boolean }>), [me?.user.id]);
  const open = path.startsWith('/setup') || path.startsWith('/login');

  useEffect(() => {
    if (loading || !setup.data || path.startsWith('/accept-invite')) return;
    if (setup.data.needsSetup && !path.startsWith('/setup')) navigate('/setup', true);
    else if (!setup.data.needsSetup && !me && !path.startsWith('/login')) navigate('/login', true);
    else if (me && (open || path === '/')) navigate('/apps', true);
  }, [loading, setup.data, me, path, open]);

  if (path.startsWith('/accept-invite')) return <AcceptInvite />;
  if (path.startsWith('/setup')) return <Setup />;
  if (path.startsWith('/login')) return <Login />;
  if (!me || !workspace) return <div className="auth-page"><p>Loading…</p></div>;

  let page;
  let m;
  if ((m = match('/apps/:appId/vault', path))) page = <Vault appId={m.appId!} />;
  else if ((m = match('/apps/:appId', path))) page = <AppKeys appId={m.appId!} />;
  else if (match('/apps', path)) page = <Apps />;
  else if ((m = match('/keys/:keyId', path))) page = <KeyDetail keyId={m.keyId!} />;
  else if (match('/audit', path)) page = <Audit />;
  else if (match('/members', path)) page = <Members />;
  else if (match('/playground', path)) page = <Playground />;
  else if (match('/reference', path)) page = <Reference />;
  else page = <Empty title="Page not found" />;
  return <Layout>{page}</Layout>;
}

createRoot(document.getElementById('root')!).render(
  <StrictMode>
    <SessionProvider>
      <Routes />
    </SessionProvider>
  </StrictMode>,
);
