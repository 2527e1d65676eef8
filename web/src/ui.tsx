// The console's building blocks: buttons, badges, modals, fields, copy buttons, toasts.
import { useEffect, useEffectEvent, useRef, useState, type ReactNode } from 'react';
import { ApiError } from './api';

export function Button({ children, kind = 'secondary', ...props }: { children: ReactNode; kind?: 'primary' | 'secondary' | 'danger' | 'ghost' } & React.ButtonHTMLAttributes<HTMLButtonElement>) {
  return <button type="button" className={`btn btn-${kind}`} {...props}>{children}</button>;
}

export function Badge({ tone, children }: { tone: 'green' | 'grey' | 'red' | 'amber' | 'blue'; children: ReactNode }) {
  return <span className={`badge badge-${tone}`}>{children}</span>;
}

export const statusTone = (status: string) => (status === 'active' ? 'green' : status === 'disabled' ? 'amber' : 'red') as 'green' | 'amber' | 'red';

/** Fields where Enter does something of its own (adds a chip) and never submits the dialog. */
const ENTER_ADDS = '[data-enter="add"]';
/** Input types where Enter means "done": the dialog's primary action. */
const SUBMITTING_INPUTS = new Set(['text', 'email', 'url', 'password', 'search', 'tel', 'number', 'date', 'datetime-local', 'time']);

/**
 * Accessible modal: focus moves in, Tab stays inside, focus returns to where it was. Escape and a
 * click on the backdrop close it unless `dismissible` is false (a secret shown once: only its own
 * button closes it, so the value is never lost to a stray click or key).
 */
export function Modal({ title, onClose, children, footer, wide, dismissible = true }: { title: string; onClose: () => void; children: ReactNode; footer?: ReactNode; wide?: boolean; dismissible?: boolean }) {
  const ref = useRef<HTMLDivElement>(null);
  // Escape reads the latest props without re-running the effect (that would move focus on every render).
  const onEscape = useEffectEvent(() => {
    if (dismissible) onClose();
  });
  useEffect(() => {
    const previous = document.activeElement as HTMLElement | null;
    // The first field if there is one, else the first action, never the close button.
    const first = ref.current?.querySelector<HTMLElement>('.modal-body input:not([disabled]), .modal-body textarea, .modal-body select')
      ?? ref.current?.querySelector<HTMLElement>('.modal-foot button, .modal-body button');
    first?.focus();
    const onKey = (e: KeyboardEvent) => {
      if (e.key === 'Escape') {
        onEscape();
        return;
      }
      // Tab stays inside the dialog.
      if (e.key === 'Tab' && ref.current) {
        const items = [...ref.current.querySelectorAll<HTMLElement>('input:not([disabled]), select, textarea, button:not([disabled]), a[href], summary')];
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
      // Enter in a plain field submits: the dialog's primary action, when it may be pressed. Not when
      // the field handled Enter itself (defaultPrevented), nor in fields where Enter adds an entry.
      const target = e.target;
      if (e.key === 'Enter' && !e.defaultPrevented && !e.isComposing && target instanceof HTMLInputElement && SUBMITTING_INPUTS.has(target.type)
        && !target.closest(ENTER_ADDS) && ref.current?.contains(target)) {
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
  }, []);
  return (
    <div className="overlay" onMouseDown={(e) => { if (dismissible && e.target === e.currentTarget) onClose(); }}>
      <div className={`modal${wide ? ' modal-wide' : ''}`} role="dialog" aria-modal="true" aria-labelledby="modal-title" ref={ref}>
        <header className="modal-head">
          <h2 id="modal-title">{title}</h2>
          {dismissible && <button type="button" className="icon-btn" aria-label="Close" onClick={onClose}>×</button>}
        </header>
        <div className="modal-body">{children}</div>
        {footer && <footer className="modal-foot">{footer}</footer>}
      </div>
    </div>
  );
}

/**
 * Asks before something that cannot be undone (or cuts someone off). The action runs on confirm;
 * its error shows here and the dialog stays open.
 */
export function Confirm({ title, children, action, onConfirm, onClose, danger = true }: { title: string; children: ReactNode; action: string; onConfirm: () => Promise<unknown>; onClose: () => void; danger?: boolean }) {
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<unknown>();
  const run = async () => {
    setBusy(true);
    setError(undefined);
    try {
      await onConfirm();
      onClose();
    } catch (err) {
      setError(err);
      setBusy(false);
    }
  };
  return (
    <Modal title={title} onClose={onClose} footer={<><Button onClick={onClose}>Cancel</Button><Button kind={danger ? 'danger' : 'primary'} disabled={busy} onClick={() => void run()}>{action}</Button></>}>
      <div style={{ margin: 0 }}>{children}</div>
      <ErrorNote error={error} />
    </Modal>
  );
}

/**
 * A list typed one entry at a time: Enter, a comma or leaving the field adds what is typed (so
 * nothing typed is lost), Backspace in an empty field takes the last entry back. Enter here never
 * submits the form around it.
 */
export function ChipInput({ id, values, onChange, placeholder, check, describedBy }: { id: string; values: string[]; onChange: (values: string[]) => void; placeholder?: string; check?: (value: string) => string | null; describedBy?: string }) {
  const [draft, setDraft] = useState('');
  const [problem, setProblem] = useState<string | null>(null);
  const add = (text: string) => {
    const entries = text.split(/[,\s]+/).map((v) => v.trim()).filter(Boolean);
    if (entries.length === 0) return;
    const bad = check ? entries.map((v) => [v, check(v)] as const).find(([, p]) => p) : undefined;
    if (bad) {
      setProblem(`${bad[0]}: ${bad[1]}`);
      return;
    }
    setProblem(null);
    onChange([...values, ...entries.filter((v, i) => !values.includes(v) && entries.indexOf(v) === i)]);
    setDraft('');
  };
  return (
    <div className="chips" data-enter="add">
      {values.map((v) => (
        <span className="chip" key={v}>{v}<button type="button" className="chip-x" aria-label={`Remove ${v}`} onClick={() => onChange(values.filter((x) => x !== v))}>×</button></span>
      ))}
      <input id={id} value={draft} placeholder={values.length ? '' : placeholder} aria-describedby={describedBy} aria-invalid={problem ? true : undefined}
        onChange={(e) => {
          const text = e.target.value;
          if (/[,\s]$/.test(text)) add(text);
          else setDraft(text);
        }}
        onKeyDown={(e) => {
          if (e.key === 'Enter') {
            // Handled here, whatever is typed: Enter in a list never submits the form.
            e.preventDefault();
            add(draft);
          } else if (e.key === 'Backspace' && draft === '' && values.length > 0) {
            onChange(values.slice(0, -1));
          }
        }}
        onBlur={() => add(draft)} />
      {problem && <p className="error-text chips-error" role="alert">{problem}</p>}
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

/**
 * A row's actions behind one button: opens below it over the page (not inside the row, where a
 * narrow cell would cut the items off); a click outside, Escape or choosing an item closes it.
 */
export function RowMenu({ label, children }: { label: string; children: ReactNode }) {
  const ref = useRef<HTMLDetailsElement>(null);
  useEffect(() => {
    const close = (e: Event) => {
      const menu = ref.current;
      if (!menu?.open) return;
      if (e instanceof KeyboardEvent ? e.key === 'Escape' : !menu.contains(e.target as Node)) {
        menu.open = false;
        if (e instanceof KeyboardEvent) menu.querySelector('summary')?.focus();
      }
    };
    document.addEventListener('pointerdown', close);
    document.addEventListener('keydown', close);
    return () => {
      document.removeEventListener('pointerdown', close);
      document.removeEventListener('keydown', close);
    };
  }, []);
  return (
    <details className="row-menu" ref={ref} onClick={(e) => { if ((e.target as HTMLElement).closest('button')) e.currentTarget.open = false; }}>
      <summary aria-label={label} title={label}>⋯</summary>
      <div className="row-menu-items">{children}</div>
    </details>
  );
}

const shown = (v: unknown): string => (v === null || v === undefined ? '—' : typeof v === 'string' ? v : JSON.stringify(v));

/** Before → after of each changed field, when the entry records them. */
export function AuditChanges({ meta }: { meta: unknown }) {
  const m = meta as { before?: Record<string, unknown>; after?: Record<string, unknown> } | null;
  const fields = Object.keys(m?.after ?? {});
  if (!m?.after || fields.length === 0) return null;
  return (
    <details className="changes">
      <summary>Changed {fields.join(', ')}</summary>
      <dl className="kv" data-testid="audit-changes">
        {fields.map((f) => (
          <div key={f} style={{ display: 'contents' }}>
            <dt>{f}</dt>
            <dd><del className="mono muted">{shown(m.before?.[f])}</del> → <span className="mono">{shown(m.after?.[f])}</span></dd>
          </div>
        ))}
      </dl>
    </details>
  );
}

