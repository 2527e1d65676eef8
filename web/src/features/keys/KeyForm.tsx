// The create and edit modals of a key: every field but the value, with inline validation.
import { useState } from 'react';
import { api, ApiError, type Key } from '../../api';
import { Button, ChipInput, CopyButton, ErrorNote, Field, Modal } from '../../ui';
import { NamedLimitsEditor, toLimits, toRows, type LimitRow } from '../identities/NamedLimits';

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/** Client-side check of one allowlist line (the server checks again). */
export function ipLineError(line: string): string | null {
  const [addr, bits, extra] = line.split('/');
  if (extra !== undefined || !addr) return 'not an address or CIDR';
  const v4 = IPV4.test(addr);
  const v6 = !v4 && addr.includes(':') && /^[0-9a-fA-F:.]+$/.test(addr);
  if (!v4 && !v6) return 'not an IPv4 or IPv6 address';
  if (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > (v4 ? 32 : 128))) return 'bad prefix length';
  return null;
}

interface FormState {
  name: string;
  ownerId: string;
  environment: 'live' | 'test';
  permissions: string[];
  resources: string[];
  allIps: boolean;
  ips: string;
  neverExpire: boolean;
  expiresAt: string;
  limited: boolean;
  limit: string;
  windowSec: string;
  capped: boolean;
  remaining: string;
  named: LimitRow[];
}

function initial(key?: Key): FormState {
  const local = (iso: string) => new Date(Date.parse(iso) - new Date().getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  return {
    name: key?.name ?? '',
    ownerId: key?.ownerId ?? '',
    environment: key?.environment ?? 'live',
    permissions: key?.permissions ?? [],
    resources: key?.resources ?? [],
    allIps: !key || key.ipAllowlist.length === 0,
    ips: (key?.ipAllowlist ?? []).join('\n'),
    neverExpire: !key?.expiresAt,
    expiresAt: key?.expiresAt ? local(key.expiresAt) : local(new Date(Date.now() + 30 * 86_400_000).toISOString()),
    limited: Boolean(key?.ratelimit),
    limit: String(key?.ratelimit?.limit ?? 100),
    windowSec: String((key?.ratelimit?.durationMs ?? 60_000) / 1000),
    capped: key ? key.remaining !== null : false,
    remaining: String(key?.remaining ?? 1000),
    named: toRows(key?.ratelimits),
  };
}

export function KeyForm({ appId, keyToEdit, onClose, onSaved }: { appId: string; keyToEdit?: Key; onClose: () => void; onSaved: (key: Key) => void }) {
  const [f, setF] = useState<FormState>(() => initial(keyToEdit));
  const [error, setError] = useState<unknown>();
  const [fieldErrors, setFieldErrors] = useState<Record<string, string>>({});
  const [busy, setBusy] = useState(false);
  const set = (patch: Partial<FormState>) => {
    setF((current) => ({ ...current, ...patch }));
    setFieldErrors({});
  };
  const ipLines = f.ips.split('\n').map((l) => l.trim()).filter(Boolean);
  const ipProblems = f.allIps ? [] : ipLines.map((l) => [l, ipLineError(l)] as const).filter(([, e]) => e);

  const submit = async () => {
    const errors: Record<string, string> = {};
    if (!f.name.trim()) errors.name = 'Give the key a name';
    if (ipProblems.length) errors.ips = ipProblems.map(([l, e]) => `${l}: ${e}`).join('; ');
    if (!f.allIps && ipLines.length === 0) errors.ips = 'Add at least one address, or allow all';
    if (!f.neverExpire && Date.parse(f.expiresAt) <= Date.now()) errors.expiresAt = 'Choose a time in the future';
    const named = toLimits(f.named);
    if (typeof named === 'string') errors.ratelimits = named;
    setFieldErrors(errors);
    if (Object.keys(errors).length) return;
    const body = {
      name: f.name.trim(),
      ownerId: f.ownerId.trim() || null,
      permissions: f.permissions,
      resources: f.resources,
      ipAllowlist: f.allIps ? [] : ipLines,
      expiresAt: f.neverExpire ? null : new Date(f.expiresAt).toISOString(),
      ratelimit: f.limited ? { limit: Number(f.limit), durationMs: Number(f.windowSec) * 1000 } : null,
      remaining: f.capped ? Number(f.remaining) : null,
      ratelimits: typeof named === 'string' ? [] : named,
    };
    setBusy(true);
    try {
      // The environment is part of a key's value: it is chosen at creation, and changed only by a roll.
      const saved = keyToEdit
        ? await api<Key>('PATCH', `/v1/keys/${keyToEdit.id}`, body)
        : await api<Key>('POST', `/v1/apps/${appId}/keys`, { ...body, environment: f.environment, ownerId: body.ownerId ?? undefined });
      onSaved(saved);
    } catch (err) {
      if (err instanceof ApiError && err.problem.errors) {
        setFieldErrors(Object.fromEntries(err.problem.errors.map((e) => [e.path.split('/')[1] === 'ipAllowlist' ? 'ips' : e.path.split('/')[1] ?? 'form', e.message])));
      }
      setError(err);
    } finally {
      setBusy(false);
    }
  };

  return (
    <Modal wide title={keyToEdit ? `Edit ${keyToEdit.name}` : 'Create API key'} onClose={onClose}
      footer={<><Button onClick={onClose}>Cancel</Button><Button kind="primary" onClick={() => void submit()} disabled={busy}>{busy ? 'Saving…' : keyToEdit ? 'Save changes' : 'Create key'}</Button></>}>
      <div className="grid-2">
        <Field label="Name" htmlFor="k-name" error={fieldErrors.name}><input id="k-name" value={f.name} onChange={(e) => set({ name: e.target.value })} placeholder="Production backend" /></Field>
        <Field label="Owner" htmlFor="k-owner" hint="Your user or customer id; rate limits can apply per owner"><input id="k-owner" value={f.ownerId} onChange={(e) => set({ ownerId: e.target.value })} placeholder="user_123" /></Field>
      </div>
      <div className="grid-2">
        {keyToEdit ? (
          <Field label="Environment" htmlFor="k-env" hint="Part of the key's value: roll the key to change it">
            <input id="k-env" value={keyToEdit.environment} readOnly />
          </Field>
        ) : (
          <Field label="Environment" htmlFor="k-env">
            <select id="k-env" value={f.environment} onChange={(e) => set({ environment: e.target.value as 'live' | 'test' })}>
              <option value="live">live</option><option value="test">test</option>
            </select>
          </Field>
        )}
        <Field label="Permissions" htmlFor="k-perms" hint="Enter or comma after each, e.g. docs.read, docs.*; none: any" error={fieldErrors.permissions}>
          <ChipInput id="k-perms" values={f.permissions} onChange={(permissions) => set({ permissions })} placeholder="docs.read" />
        </Field>
      </div>
      <Field label="Domain scope" htmlFor="k-res" hint={f.resources.length ? 'The key works only for these resources' : 'Enter after each, e.g. acme.com or *.acme.dev; none: every resource'} error={fieldErrors.resources}>
        <ChipInput id="k-res" values={f.resources} onChange={(resources) => set({ resources })} placeholder="acme.com" />
      </Field>
      <Field label="IP allowlist" htmlFor="k-ips" error={fieldErrors.ips ?? (ipProblems.length ? ipProblems.map(([l, e]) => `${l}: ${e}`).join('; ') : undefined)}>
        <label className="check"><input type="checkbox" checked={f.allIps} onChange={(e) => set({ allIps: e.target.checked })} />Allow all IP addresses</label>
        {!f.allIps && <textarea id="k-ips" rows={3} value={f.ips} onChange={(e) => set({ ips: e.target.value })} placeholder={'203.0.113.7\n10.0.0.0/8\n2001:db8::/32'} aria-describedby="ips-hint" />}
        {!f.allIps && <p className="hint" id="ips-hint">One IPv4/IPv6 address or CIDR per line{ipProblems.length ? '' : ipLines.length ? ` — ${ipLines.length} valid` : ''}</p>}
      </Field>
      <div className="grid-2">
        <Field label="Expiration" htmlFor="k-exp" error={fieldErrors.expiresAt}>
          <label className="check"><input type="checkbox" checked={f.neverExpire} onChange={(e) => set({ neverExpire: e.target.checked })} />Never expire</label>
          {!f.neverExpire && <input id="k-exp" type="datetime-local" value={f.expiresAt} onChange={(e) => set({ expiresAt: e.target.value })} />}
        </Field>
        <Field label="Usage cap" htmlFor="k-cap" error={fieldErrors.remaining}>
          <label className="check"><input type="checkbox" checked={f.capped} onChange={(e) => set({ capped: e.target.checked })} />Limit total uses</label>
          {f.capped && <input id="k-cap" type="number" min={0} value={f.remaining} onChange={(e) => set({ remaining: e.target.value })} />}
        </Field>
      </div>
      <Field label="Rate limit" htmlFor="k-rl" error={fieldErrors.ratelimit}>
        <label className="check"><input type="checkbox" checked={f.limited} onChange={(e) => set({ limited: e.target.checked })} />Limit this key&apos;s request rate</label>
        {f.limited && (
          <div className="row"><input id="k-rl" type="number" min={1} value={f.limit} onChange={(e) => set({ limit: e.target.value })} style={{ width: 110 }} aria-label="Requests" /> requests per <input type="number" min={1} value={f.windowSec} onChange={(e) => set({ windowSec: e.target.value })} style={{ width: 90 }} aria-label="Seconds" /> seconds</div>
        )}
      </Field>
      <fieldset className="stack plain-fieldset">
        <legend>Named limits</legend>
        <p className="hint">Limits a verify names with a cost (tokens, uploads), besides the rate limit above; the key&apos;s owner may have more (its identity).</p>
        <NamedLimitsEditor idPrefix="k-named" rows={f.named} onChange={(named) => set({ named })} />
        {fieldErrors.ratelimits && <p className="error-text" role="alert">{fieldErrors.ratelimits}</p>}
      </fieldset>
      <ErrorNote error={error} />
    </Modal>
  );
}

/** The one time a key's value is visible. */
export function ShownOnce({ title, value, secretLabel, onClose, stored = 'only a hash of it is stored' }: { title: string; value: string; secretLabel: string; onClose: () => void; stored?: string }) {
  // Only its own button closes it: a stray click or Escape must not lose the value.
  return (
    <Modal title={title} onClose={onClose} dismissible={false} footer={<Button kind="primary" onClick={onClose}>I have stored it</Button>}>
      <div className="note note-warn"><strong>Copy it now.</strong> This {secretLabel} will not be shown again; {stored}.</div>
      <div className="secret-box"><code data-testid="shown-key">{value}</code><CopyButton text={value} testId="copy-key" /></div>
    </Modal>
  );
}
