// The console's building blocks: buttons, badges, modals, fields, copy buttons, toasts.
import { useEffect, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api';

export function Button({ children, kind = 'secondary', ...props }: { children: ReactNode; kind?: 'primary' | 'secondary' | 'danger' | 'ghost' } & React.ButtonHTMLAttributes<HTMLButtonElement>) {
  return <button type="button" className={`btn btn-${kind}`} {...props}>{children}</button>;
}

export function Badge({ tone, children }: { tone: 'green' | 'grey' | 'red' | 'amber' | 'blue'; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export const statusTone = (status: string) => (status === 'active' ? 'green' : status === 'disabled' ? 'amber' : 'red') as 'green' | 'amber' | 'red';

/** Accessible modal: focus moves in, Escape closes, focus returns to where it was. */
export function Modal({ title, onClose, children, footer, wide }: { title: string; onClose: () => void; children: ReactNode; footer?: ReactNode; wide?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    // The first field if there is one, else the first action, never the close button.
    const first = ref.current?.querySelector<HTMLElement>('.modal-body input:not([disabled]), .modal-body textarea, .modal-body select')
      ?? ref.current?.querySelector<HTMLElement>('.modal-foot button, .modal-body button');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') onClose();
      // Tab stays inside the dialog.
      if (e.key === 'Tab' && ref.current) {
        const items = [...ref.current.querySelectorAll<HTMLElement>('input:not([disabled]), select, textarea, button:not([disabled]), a[href]')];
        const first = items[0];
        const last = items[items.length - 1];
        if (e.shiftKey && document.activeElement === first) {
          e.preventDefault();
          last?.focus();
        } else if (!e.shiftKey && document.activeElement === last) {
          e.preventDefault();
          first?.focus();
        }
      }
      // Enter in a field submits: the dialog's primary action, when it may be pressed.
      if (e.key === 'Enter' && e.target instanceof HTMLInputElement && e.target.type !== 'checkbox' && ref.current?.contains(e.target)) {
        const primary = ref.current.querySelector<HTMLButtonElement>('.modal-foot .btn-primary:not([disabled])');
        if (primary) {
          e.preventDefault();
          primary.click();
        }
      }
    };
    document.addEventListener('keydown', onKey);
    return () => {
      document.removeEventListener('keydown', onKey);
      previous?.focus();
    };
  }, [onClose]);
  return (
    <div className="overlay" onMouseDown={(e) => e.target === e.currentTarget && onClose()}>
      <div className={`modal${wide ? ' modal-wide' : ''}`} role="dialog" aria-modal="true" aria-labelledby="modal-title" ref={ref}>
        <header className="modal-head">
          <h2 id="modal-title">{title}</h2>
          <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>×</button>
        </header>
        <div className="modal-body">{children}</div>
        {footer && <footer className="modal-foot">{footer}</footer>}
      </div>
    </div>
  );
}

export function Field({ label, hint, error, children, htmlFor }: { label: string; hint?: string; error?: string; children: ReactNode; htmlFor?: string }) {
  return (
    <div className={`field${error ? ' field-error' : ''}`}>
      <label htmlFor={htmlFor}>{label}</label>
      {children}
      {error ? <p className="error-text" role="alert">{error}</p> : hint ? <p className="hint">{hint}</p> : null}
    </div>
  );
}

export function CopyButton({ text, label = 'Copy', testId }: { text: string | (() => string); label?: string; testId?: string }) {
  const [done, setDone] = useState(false);
  return (
    <Button data-testid={testId} onClick={async () => {
      await navigator.clipboard.writeText(typeof text === 'function' ? text() : text);
      setDone(true);
      setTimeout(() => setDone(false), 1500);
    }}>{done ? 'Copied ✓' : label}</Button>
  );
}

export function Empty({ title, children }: { title: string; children?: ReactNode }) {
  return (
    <div className="empty">
      <h3>{title}</h3>
      {children}
    </div>
  );
}

/** Schema wording in field errors, said the way a person would. */
const FRIENDLY: [RegExp, string][] = [
  [/^must match format "email"$/, 'is not a valid email address'],
  [/^must match format "date-time"$/, 'is not a valid date and time'],
  [/^must NOT have fewer than (\d+) characters$/, 'needs at least $1 characters'],
  [/^must NOT have more than (\d+) characters$/, 'can have at most $1 characters'],
  [/^must match pattern .*$/, 'is not in the expected form'],
  [/^unknown field$/, 'is not a field this form knows'],
  [/^is required$/, 'is required'],
];

const fieldName = (path: string) => path.replace(/^(body|query|params)\/?/, '').replaceAll('/', ' › ') || 'The request';

/** An API error as sentences: each invalid field by name, never raw schema text or a stack. */
export function ErrorNote({ error }: { error: unknown }) {
  if (!error) return null;
  if (error instanceof ApiError && error.problem.errors?.length) {
    return (
      <div className="note note-error" role="alert">
        {error.problem.errors.map((e) => {
          const rule = FRIENDLY.find(([re]) => re.test(e.message));
          return <div key={e.path}>{fieldName(e.path)} {rule ? e.message.replace(rule[0], rule[1]) : e.message}.</div>;
        })}
      </div>
    );
  }
  return <div className="note note-error" role="alert">{error instanceof Error ? error.message : String(error)}</div>;
}

/** Inline `code` in descriptions from the spec. */
export function Md({ text }: { text: string }) {
  return <>{text.split(/(`[^`]+`)/).map((part, i) => (part.startsWith('`') && part.endsWith('`') ? <code key={i}>{part.slice(1, -1)}</code> : part))}</>;
}

export const day = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleDateString(undefined, { dateStyle: 'medium' }) : '—');

export const when = (iso: string | null | undefined) => (iso ? new Date(iso).toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' }) : '—');

export function relative(iso: string | null): string {
  if (!iso) return 'never';
  const s = Math.round((Date.now() - Date.parse(iso)) / 1000);
  if (s < 60) return 'just now';
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}
