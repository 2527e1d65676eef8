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
