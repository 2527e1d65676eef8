// Routing: wouter over the browser's history. The console's pages are one table (routes.tsx);
// these helpers keep the few places that navigate in code independent of the library.
import type { ReactNode } from 'react';
import { Link as WouterLink, useLocation } from 'wouter';
import { navigate as go } from 'wouter/use-browser-location';

export function navigate(to: string, replace = false): void {
  go(to, { replace });
}

/** The current path. */
export function usePath(): string {
  return useLocation()[0];
}

export function Link({ to, children, className }: { to: string; children: ReactNode; className?: string }) {
  const [path] = useLocation();
  return (
    <WouterLink href={to} className={className} aria-current={path === to ? 'page' : undefined}>
      {children}
    </WouterLink>
  );
}
