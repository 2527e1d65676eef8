// IP allowlists: strict parsing of addresses and CIDRs (IPv4 and IPv6) and membership tests.
import ipaddr from 'ipaddr.js';

export type IpRange = [ipaddr.IPv4 | ipaddr.IPv6, number];

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  // Only canonical dotted-quad IPv4: no octal, hex or shortened forms that browsers and libc disagree on.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.process(text);
  return null;
}

/** An address ("10.0.0.1", "2001:db8::1") or a CIDR ("10.0.0.0/8"); null when it is neither. */
export function parseIpEntry(entry: string): IpRange | null {
  const slash = entry.indexOf('/');
  const addrText = slash < 0 ? entry : entry.slice(0, slash);
  const addr = parseAddress(addrText);
  if (!addr) return null;
  const max = addr.kind() === 'ipv4' ? 32 : 128;
  if (slash < 0) return [addr, max];
  const bitsText = entry.slice(slash + 1);
  if (!/^\d{1,3}$/.test(bitsText)) return null;
  const bits = Number(bitsText);
  // An IPv4-mapped IPv6 CIDR was turned into IPv4 by process(); its prefix shrinks by 96.
  if (addr.kind() === 'ipv4' && addrText.includes(':')) return bits >= 96 && bits <= 128 ? [addr, bits - 96] : null;
  return bits <= max ? [addr, bits] : null;
}

export function parseClientIp(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  return parseAddress(text.trim());
}

export function ipAllowed(ip: ipaddr.IPv4 | ipaddr.IPv6, ranges: readonly IpRange[]): boolean {
  for (const [addr, bits] of ranges) {
    if (addr.kind() === ip.kind() && (ip as ipaddr.IPv4).match(addr as ipaddr.IPv4, bits)) return true;
  }
  return false;
}

/** IPv4 ranges as (network, mask) integers: the common case, matched without allocating. */
export type Ipv4Range = [number, number];

export function toIpv4Ranges(ranges: readonly IpRange[]): Ipv4Range[] {
  return ranges.filter(([addr]) => addr.kind() === 'ipv4').map(([addr, bits]) => {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    return [(ipv4ToInt(addr.toString())! & mask) >>> 0, mask];
  });
}

/** Canonical dotted quad → unsigned 32-bit integer; null for anything else (IPv6, leading zeros…). */
export function ipv4ToInt(text: string): number | null {
  let value = 0;
  let part = 0;
  let digits = 0;
  let dots = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || dots === 3) return null;
      value = value * 256 + part;
      part = 0;
      digits = 0;
      dots++;
    } else if (c >= 48 && c <= 57) {
      if (digits > 0 && part === 0) return null;
      part = part * 10 + (c - 48);
      if (part > 255 || ++digits > 3) return null;
    } else {
      return null;
    }
  }
  if (dots !== 3 || digits === 0) return null;
  return value * 256 + part;
}

export function ipv4Allowed(ip: number, ranges: readonly Ipv4Range[]): boolean {
  for (const [net, mask] of ranges) if (((ip & mask) >>> 0) === net) return true;
  return false;
}
