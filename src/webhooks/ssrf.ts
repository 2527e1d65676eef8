// Where a webhook may be sent: public unicast addresses only, unless KEYWARD_WEBHOOK_ALLOW_PRIVATE.
// Checked on the literal address at creation and on every resolved address at send time (the
// address actually connected to), so a name that later resolves to 127.0.0.1 is refused too.
// An IPv6 address that carries an IPv4 one (compatible, mapped, translated, NAT64, 6to4) is judged
// by the IPv4 address it carries: that is where a router or translator sends the packets.
import ipaddr from 'ipaddr.js';

/** What a refused target is called in errors: never the address itself (it may be an internal DNS answer). */
const REFUSED_ADDRESS = 'private address';

function parseAddress(text: string): ipaddr.IPv4 | ipaddr.IPv6 | null {
  // Only canonical dotted-quad IPv4: no octal, hex or shortened forms that libraries disagree on.
  if (ipaddr.IPv4.isValidFourPartDecimal(text)) return ipaddr.IPv4.parse(text);
  if (text.includes(':') && ipaddr.IPv6.isValid(text)) return ipaddr.IPv6.parse(text);
  return null;
}

const v4 = (high: number, low: number): ipaddr.IPv4 => new ipaddr.IPv4([high >> 8, high & 0xff, low >> 8, low & 0xff]);
const zero = (parts: readonly number[], from: number, to: number): boolean => parts.slice(from, to).every((p) => p === 0);

/**
 * The IPv4 address an IPv6 address carries, `'opaque'` for forms whose IPv4 address cannot be read
 * off the address (local-use NAT64 prefixes of any length, Teredo), or null when it carries none.
 */
function embeddedIpv4(ip: ipaddr.IPv6): ipaddr.IPv4 | 'opaque' | null {
  const p = ip.parts;
  // ::a.b.c.d (compatible, deprecated but still routed by some stacks), ::ffff:a.b.c.d (mapped),
  // ::ffff:0:a.b.c.d (translated, RFC 6145).
  if (zero(p, 0, 6) || (zero(p, 0, 5) && p[5] === 0xffff) || (zero(p, 0, 4) && p[4] === 0xffff && p[5] === 0)) return v4(p[6]!, p[7]!);
  // NAT64 well-known prefix 64:ff9b::/96 (RFC 6052).
  if (p[0] === 0x64 && p[1] === 0xff9b && zero(p, 2, 6)) return v4(p[6]!, p[7]!);
  // NAT64 local-use prefix 64:ff9b:1::/48 (RFC 8215): the IPv4 part's place depends on the prefix length chosen.
  if (p[0] === 0x64 && p[1] === 0xff9b && p[2] === 1) return 'opaque';
  // 6to4 2002:a.b.c.d::/48 (RFC 3056).
  if (p[0] === 0x2002) return v4(p[1]!, p[2]!);
  // Teredo 2001::/32: tunnels to an IPv4 server and an obfuscated client address.
  if (p[0] === 0x2001 && p[1] === 0) return 'opaque';
  return null;
}

/** Why an address may not receive webhooks (`REFUSED_ADDRESS`, never the address), or null when it may. */
export function refusedAddress(address: string): string | null {
  const ip = parseAddress(address.trim());
  if (!ip) return 'not an IP address';
  if (ip.kind() === 'ipv6') {
    const v6 = ip as ipaddr.IPv6;
    // Loopback ::1 and unspecified :: are IPv6's own, before they read as the compatible 0.0.0.x.
    if (v6.range() === 'loopback' || v6.range() === 'unspecified') return REFUSED_ADDRESS;
    const carried = embeddedIpv4(v6);
    if (carried === 'opaque') return REFUSED_ADDRESS;
    if (carried !== null) return carried.range() === 'unicast' ? null : REFUSED_ADDRESS;
    // NAT64, 6to4 and friends were handled above; what is left must be plain global unicast.
    return v6.range() === 'unicast' ? null : REFUSED_ADDRESS;
  }
  // Public unicast only: loopback, private, link-local (the cloud metadata service at
  // 169.254.169.254), carrier-grade NAT, multicast, reserved … are refused.
  return ip.range() === 'unicast' ? null : REFUSED_ADDRESS;
}

/** The host of a URL when it is a literal IP (brackets stripped), else null. */
export function literalHost(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return parseAddress(host) ? host : null;
}

/** Names that always mean this machine, whatever DNS says. */
export function isLocalName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}
