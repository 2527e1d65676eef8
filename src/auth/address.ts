// Where a login comes from, as one name per network: an IPv4 address, or the /64 an IPv6 address
// belongs to (what one subscriber or host is given, and rotates privacy addresses within). Every
// spelling of one address (case, zeros, `::`, brackets, IPv4-mapped) gives the same name, so an
// attacker cannot multiply throttle counters by respelling it.
import ipaddr from 'ipaddr.js';

/** The name used when the address is unknown (no socket address at all). */
const UNKNOWN = 'unknown';
/** Longest text kept of an address that does not parse (a proxy's odd header), as its name. */
const MAX_RAW = 64;

export function networkOf(ip: string | null | undefined): string {
  if (!ip) return UNKNOWN;
  let text = ip.trim();
  if (text.startsWith('[') && text.endsWith(']')) text = text.slice(1, -1);
  // A zone (fe80::1%eth0) names an interface of this host, not a different address.
  const zone = text.indexOf('%');
  if (zone >= 0) text = text.slice(0, zone);
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text).toString();
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) {
    const addr = ipaddr.process(text);
    if (addr.kind() === 'ipv4') return addr.toString();
    const parts = (addr as ipaddr.IPv6).parts.slice(0, 4);
    return `${new ipaddr.IPv6([...parts, 0, 0, 0, 0]).toString()}/64`;
  }
  return `raw:${text.slice(0, MAX_RAW)}`;
}
