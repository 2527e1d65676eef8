// The environment schema is the one list of variables: the parser, the defaults, docs/configuration.md
// and README's table all come from it, and a variable named anywhere else is in it.
import fs from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig, readEnv } from '../../src/config.js';
import { README_END, README_START, renderConfigDoc, renderReadmeTable } from '../../src/config/doc.js';
import { CLI_VARIABLES, REPLACED, isOptional, kindOf, variables } from '../../src/config/schema.js';

const HOUR = 3_600_000;

function sourceFiles(dir: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && /\.(ts|tsx|mjs)$/.test(e.name))
    .map((e) => path.join(e.parentPath, e.name));
}

function refusal(env: Record<string, string>): string {
  try {
    loadConfig(env);
  } catch (err) {
    expect(err).toBeInstanceOf(ConfigError);
    return (err as Error).message;
  }
  throw new Error(`accepted ${JSON.stringify(env)}`);
}

describe('configuration schema', () => {
  it('docs/configuration.md and README\'s table are what the schema renders (run `npm run docs:config`)', () => {
    expect(fs.readFileSync('docs/configuration.md', 'utf8'), 'docs/configuration.md is stale: run `npm run docs:config`').toBe(renderConfigDoc());
    const readme = fs.readFileSync('README.md', 'utf8');
    const table = readme.slice(readme.indexOf(README_START), readme.indexOf(README_END) + README_END.length);
    expect(table, "README's configuration table is stale: run `npm run docs:config`").toBe(renderReadmeTable());
  });

  it('every variable the code or the docs name is in the schema (or listed as replaced, or the CLI\'s)', () => {
    const known = new Set<string>([...variables().map(([name]) => name), ...Object.keys(REPLACED), ...Object.keys(CLI_VARIABLES)]);
    const files = [...sourceFiles('src'), ...sourceFiles('web/src'), ...sourceFiles('sdk'), 'README.md',
      ...fs.readdirSync('docs', { recursive: true }).map((f) => path.join('docs', String(f))).filter((f) => f.endsWith('.md'))];
    const unknown = new Set<string>();
    for (const file of files) {
      // `$KEYWARD_TOKEN` and the like are a reader's shell variables in examples, not settings.
      for (const m of fs.readFileSync(file, 'utf8').matchAll(/(?<![$\w])KEYWARD_[A-Z0-9_]*[A-Z0-9]\b/g)) {
        if (!known.has(m[0])) unknown.add(`${m[0]} (${file})`);
      }
    }
    expect([...unknown]).toEqual([]);
  });

  it('every variable has a description, a group, and a default unless it is optional', () => {
    for (const [name, schema] of variables()) {
      expect(schema.description.length, name).toBeGreaterThan(10);
      expect(schema.group, name).toBeDefined();
      expect(isOptional(schema) || schema.default !== undefined, name).toBe(true);
    }
  });

  it('with nothing set, every variable takes the schema default', () => {
    const values = readEnv({}) as Record<string, unknown>;
    for (const [name, schema] of variables()) expect(values[name], name).toEqual(schema.default);
    const config = loadConfig({});
    expect(config.port).toBe(8787);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe(path.resolve('./data'));
    expect(config.sessionTtlMs).toBe(24 * HOUR);
    expect(config.webhooks.expiryNoticeMs).toBe(168 * HOUR);
    expect(config.webhooks.retentionMs).toBe(30 * 24 * HOUR);
    expect(config.verifyWire).toBe(true);
    expect(config.webhooks.allowPrivate).toBe(false);
    expect(config.bodyLimitBytes).toBe(262_144);
    expect(Object.isFrozen(config) && Object.isFrozen(config.login) && Object.isFrozen(config.webhooks)).toBe(true);
  });

  it('an empty value is the same as an unset one', () => {
    const empty = Object.fromEntries(variables().map(([name]) => [name, '']));
    expect(loadConfig(empty)).toEqual(loadConfig({}));
  });

  it('values in bounds are taken, and derived settings follow them', () => {
    const config = loadConfig({ PORT: '0', KEYWARD_SESSION_TTL_HOURS: '2', KEYWARD_WEBHOOK_RETENTION_DAYS: '3', KEYWARD_VERIFY_WIRE: '0', KEYWARD_WEBHOOK_ALLOW_PRIVATE: 'true', KEYWARD_SQLITE_SYNC: 'normal', KEYWARD_WORKERS: 'auto', REDIS_URL: 'redis://127.0.0.1:6379', KEYWARD_MASTER_KEY_PREVIOUS: ' a , b,,', KEYWARD_LEAK_PUBLIC_KEYS: '[{"key_identifier":"k1","key":"PEM"}]' });
    expect(config.port).toBe(0);
    expect(config.sessionTtlMs).toBe(2 * HOUR);
    expect(config.webhooks.retentionMs).toBe(3 * 24 * HOUR);
    expect(config.verifyWire).toBe(false);
    expect(config.webhooks.allowPrivate).toBe(true);
    expect(config.sqliteSync).toBe('NORMAL');
    expect(config.workers).toBeGreaterThanOrEqual(1);
    expect(config.previousMasterKeys).toEqual(['a', 'b']);
    expect(config.leakPublicKeys).toEqual([{ id: 'k1', pem: 'PEM' }]);
  });

  it('every bad value stops with one line naming its variable', () => {
    let checked = 0;
    for (const [name, schema] of variables()) {
      const bad: string[] = [];
      switch (kindOf(schema)) {
        case 'Integer': bad.push('abc', '1.5', '-1', String((schema.maximum as number) + 1)); break;
        case 'Boolean': bad.push('maybe', 'yes'); break;
        case 'Union': bad.push('bogus'); break;
        case 'Array': bad.push('not json', '[{"key_identifier": 1}]'); break;
        case 'String':
          if (schema.format === 'uri') bad.push('not a url', 'ftp://example.com');
          else if (schema.pattern) bad.push('short');
          break;
      }
      if (name === 'KEYWARD_TRUST_PROXY') bad.push('bogus', '10.0.0.0/33');
      for (const value of bad) {
        const message = refusal({ [name]: value });
        expect(message.startsWith(name), `${name}=${value}: ${message}`).toBe(true);
        expect(message).not.toContain('\n');
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(100);
  });

  it('an integer below its minimum says the bounds', () => {
    expect(refusal({ KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS: '0' })).toBe('KEYWARD_WEBHOOK_DISABLE_AFTER_HOURS must be between 1 and 8760, got 0');
    expect(refusal({ PORT: 'http' })).toBe('PORT must be a whole number, got "http"');
  });

  it('a refused secret or URL is never echoed', () => {
    expect(refusal({ KEYWARD_MASTER_KEY: 'hunter2-not-a-key' })).not.toContain('hunter2');
    expect(refusal({ DATABASE_URL: 'postgres//admin:hunter2@db' })).not.toContain('hunter2');
    expect(refusal({ REDIS_URL: 'http://admin:hunter2@cache' })).not.toContain('hunter2');
  });

  it('settings that depend on each other are checked together', () => {
    expect(refusal({ KEYWARD_LOGIN_HASH_SLOTS: '2', KEYWARD_LOGIN_HASH_RESERVED: '2' })).toMatch(/^KEYWARD_LOGIN_HASH_RESERVED \(2\) must be below KEYWARD_LOGIN_HASH_SLOTS \(2\)/);
    expect(refusal({ KEYWARD_WORKERS: '2' })).toMatch(/^KEYWARD_WORKERS > 1 needs REDIS_URL/);
  });
});
