// Encryption at rest for values that must stay usable (integration secrets, the vault):
// AES-256-GCM under the master key, bound to where the value lives by associated data.
import { createCipheriv, createDecipheriv, createHash, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';

export class MasterKeyError extends Error {}

const TAG_BYTES = 16;

/** What each sealed value is bound to (its AES-GCM associated data): a value moved elsewhere fails to open. */
export const sealContext = {
  keySecret: (keyId: string): string => `key:${keyId}`,
  vault: (appId: string, name: string): string => `vault:${appId}:${name}`,
  webhookSecret: (webhookId: string): string => `webhook:${webhookId}`,
} as const;

/** The current key encrypts; previous keys (during a rotation) still decrypt. */
export class SecretBox {
  private readonly keys = new Map<string, Buffer>();
  readonly currentId: string;

  constructor(current: Buffer, previous: Buffer[] = []) {
    if (current.length !== 32) throw new MasterKeyError('the master key must be 32 bytes');
    this.currentId = keyId(current);
    this.keys.set(this.currentId, current);
    for (const k of previous) this.keys.set(keyId(k), k);
  }

  /** `v1.<key id>.<iv>.<tag>.<ciphertext>`, base64url parts. */
  seal(plaintext: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.keys.get(this.currentId)!, iv, { authTagLength: TAG_BYTES });
    cipher.setAAD(Buffer.from(context));
    const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', this.currentId, iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, id, iv, tag, ct] = sealed.split('.');
    if (version !== 'v1' || !id || !iv || !tag || ct === undefined) throw new MasterKeyError('sealed value is malformed');
    const key = this.keys.get(id);
    if (!key) throw new MasterKeyError(`value sealed under master key ${id}, which is not configured (set KEYWARD_MASTER_KEY_PREVIOUS)`);
    const authTag = Buffer.from(tag, 'base64url');
    // A shorter tag would be accepted by GCM and weakens it: only the full 16 bytes we write.
    if (authTag.length !== TAG_BYTES) throw new MasterKeyError('sealed value is malformed');
    const decipher = createDecipheriv('aes-256-gcm', key, Buffer.from(iv, 'base64url'), { authTagLength: TAG_BYTES });
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(authTag);
    return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** Whether a sealed value was made with an older key and should be re-encrypted. */
  isStale(sealed: string): boolean {
    return sealed.split('.')[1] !== this.currentId;
  }
}

export function keyId(key: Buffer): string {
  return createHash('sha256').update(key).digest('hex').slice(0, 8);
}

export function decodeMasterKey(text: string, name = 'KEYWARD_MASTER_KEY'): Buffer {
  const trimmed = text.trim();
  const key = Buffer.from(trimmed.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  if (key.length !== 32) throw new MasterKeyError(`${name} must decode to 32 bytes (got ${key.length}); make one with: openssl rand -base64 32`);
  return key;
}

/** KEYWARD_MASTER_KEY, else `<dataDir>/master.key`, created (mode 0600) on first start. */
export function loadMasterKey(configured: string | undefined, dataDir: string): { key: Buffer; source: 'env' | 'file' | 'generated' } {
  if (configured) return { key: decodeMasterKey(configured), source: 'env' };
  const file = path.join(dataDir, 'master.key');
  if (fs.existsSync(file)) return { key: decodeMasterKey(fs.readFileSync(file, 'utf8'), file), source: 'file' };
  fs.mkdirSync(dataDir, { recursive: true, mode: 0o700 });
  const key = randomBytes(32);
  fs.writeFileSync(file, key.toString('base64') + '\n', { mode: 0o600, flag: 'wx' });
  return { key, source: 'generated' };
}
