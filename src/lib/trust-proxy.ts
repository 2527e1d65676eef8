// Trusted proxies: the addresses whose X-Forwarded-For is believed. One parser (used by config.ts)
// and one predicate, which every route reads the client address through: Fastify's request.ip
// (login throttling, audit) and gateway forward auth.
import { ipAllowed, parseClientIp, parseIpEntry, type IpRange } from './ip.js';

/** Names for common ranges, as proxy-addr (Express, Fastify) spells them. */
const NAMED: Record<string, readonly string[]> = {
  loopback: ['127.0.0.0/8', '::1/128'],
  linklocal: ['169.254.0.0/16', 'fe80::/10'],
  uniquelocal: ['10.0.0.0/8', '172.16.0.0/12', '192.168.0.0/16', 'fc00::/7'],
};

/**
 * `KEYWARD_TRUST_PROXY`: comma-separated addresses, CIDRs and the names loopback, linklocal,
 * uniquelocal. Returns the ranges as text (names expanded); throws an Error naming the first entry
 * that is none of these.
 */
export function parseTrustProxy(text: string): string[] {
  const out: string[] = [];
  for (const raw of text.split(',')) {
    const entry = raw.trim();
    if (entry === '') continue;
    const named = NAMED[entry.toLowerCase()];
    if (named) out.push(...named);
    else if (parseIpEntry(entry) !== null) out.push(entry);
    else throw new Error(`"${entry}" is not an IP address, a CIDR, or one of ${Object.keys(NAMED).join(', ')}`);
  }
  return out;
}

/** Whether an address is a trusted proxy; each address decided once (the same few come again and again). */
export function trustedProxies(entries: readonly string[]): (address: string | undefined) => boolean {
  const ranges = entries.map((e) => parseIpEntry(e)).filter((r): r is IpRange => r !== null);
  const known = new Map<string, boolean>();
  return (address) => {
    if (address === undefined || ranges.length === 0) return false;
    let trusted = known.get(address);
    if (trusted === undefined) {
      const ip = parseClientIp(address);
      trusted = ip !== null && ipAllowed(ip, ranges);
      if (known.size >= 10_000) known.clear();
      known.set(address, trusted);
    }
    return trusted;
  };
}
