// Where a webhook may be sent: public unicast addresses only, unless KEYWARD_WEBHOOK_ALLOW_PRIVATE.
// Checked on the literal address at creation and on every resolved address at send time (the
// address actually connected to), so a name that later resolves to 127.0.0.1 is refused too.
import { parseClientIp } from '../keys/ip.js';

/** Why an address may not receive webhooks, or null when it may. */
export function refusedAddress(address: string): string | null {
  // The allowlist's strict parser: IPv4-mapped IPv6 comes back as the IPv4 address it carries.
  const ip = parseClientIp(address);
  if (!ip) return `${address} is not an IP address`;
  const range = ip.range();
  // Public unicast only; everything else (loopback, private, link-local with the cloud metadata
  // service at 169.254.169.254, unique-local, carrier-grade NAT, multicast, reserved …) is refused.
  if (range === 'unicast') return null;
  return `${ip.toString()} is a ${range} address`;
}

/** The host of a URL when it is a literal IP (brackets stripped), else null. */
export function literalHost(url: URL): string | null {
  const host = url.hostname.startsWith('[') ? url.hostname.slice(1, -1) : url.hostname;
  return parseClientIp(host) ? host : null;
}

/** Names that always mean this machine, whatever DNS says. */
export function isLocalName(hostname: string): boolean {
  const h = hostname.toLowerCase().replace(/\.$/, '');
  return h === 'localhost' || h.endsWith('.localhost');
}
