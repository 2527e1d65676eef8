// Prefixed object ids (ws_, app_, key_ …) and the key-prefix rule: pure data, shared with the console.
export const ID_PREFIXES = {
  workspace: 'ws',
  user: 'usr',
  app: 'app',
  key: 'key',
  rootKey: 'rk',
  session: 'ses',
  audit: 'aud',
  secret: 'sec',
  invitation: 'inv',
  webhook: 'wh',
  delivery: 'whd',
  event: 'evt',
  identity: 'idt',
  override: 'rlo',
} as const;

export type IdKind = keyof typeof ID_PREFIXES;

/** Random part of every id. */
export const ID_RANDOM_LENGTH = 20;

/** JSON-schema pattern for an id of one kind, used in route params. */
export function idPattern(kind: IdKind): string {
  return `^${ID_PREFIXES[kind]}_[0-9A-Za-z]{${ID_RANDOM_LENGTH}}$`;
}

/** An app's key prefix: lowercase letters and digits, 2–16 chars, starting with a letter. */
export const PREFIX_PATTERN = '^[a-z][a-z0-9]{1,15}$';
