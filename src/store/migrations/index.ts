// The one migration set, written with Kysely's schema builder so it runs on SQLite and PostgreSQL alike.
// One file a migration; a migration is numbered when it lands, and never changed after.
import type { Migration } from 'kysely';
import { migration as m001 } from './001_init.js';
import { migration as m002 } from './002_integration_vault.js';
import { migration as m003 } from './003_unique_prefix_invitations.js';
import { migration as m004 } from './004_change_feed_idempotency.js';
import { migration as m005 } from './005_nodes.js';
import { migration as m006 } from './006_gateway_rules.js';
import { migration as m007 } from './007_webhooks.js';
import { migration as m008 } from './008_login_addresses.js';
import { migration as m009 } from './009_webhook_attempts.js';
import { migration as m010 } from './010_change_feed_xid.js';
import { migration as m011 } from './011_key_import.js';
import { migration as m012 } from './012_credit_slices.js';
import { migration as m013 } from './013_identities.js';

export const migrations: Record<string, Migration> = {
  '001_init': m001,
  '002_integration_vault': m002,
  '003_unique_prefix_invitations': m003,
  '004_change_feed_idempotency': m004,
  '005_nodes': m005,
  '006_gateway_rules': m006,
  '007_webhooks': m007,
  '008_login_addresses': m008,
  '009_webhook_attempts': m009,
  '010_change_feed_xid': m010,
  '011_key_import': m011,
  '012_credit_slices': m012,
  '013_identities': m013,
};
