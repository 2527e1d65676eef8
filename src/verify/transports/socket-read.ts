// Reads a socket into one buffer shared by every connection, the way `net.Socket`'s documented
// `onread` option does for sockets a client opens. A server's accepted sockets cannot be given that
// option, so this sets the same three fields the option sets and asks the handle for the same
// thing. Each read then reaches the callback as (bytes read, that buffer), with no Buffer object,
// no ArrayBuffer and no backing store of its own, and skips the Readable stream's push and 'data'
// event. Every read's bytes must be used or copied before the callback returns: the next read
// overwrites them.
import type { Socket } from 'node:net';

type Handle = { useUserBuffer?: (buffer: Uint8Array) => void };
type Fields = { buffer: symbol; callback: symbol; generator: symbol };

let fields: Fields | null | undefined;

/** The socket's own symbols for the onread option, found once, or null where this Node has none. */
function onreadFields(socket: Socket): Fields | null {
  if (fields !== undefined) return fields;
  const own = new Map(Object.getOwnPropertySymbols(socket).map((s) => [s.description, s]));
  const buffer = own.get('kBuffer');
  const callback = own.get('kBufferCb');
  const generator = own.get('kBufferGen');
  fields = buffer && callback && generator ? { buffer, callback, generator } : null;
  return fields;
}

/**
 * From the next read on, the socket's bytes go to `onRead` through `buffer` instead of 'data'
 * events; 'end', 'error', 'close', pause() and resume() keep working. False (nothing changed)
 * where this Node's sockets do not support it.
 */
export function readInto(socket: Socket, buffer: Buffer, onRead: (bytes: number, buffer: Buffer) => void): boolean {
  const handle = (socket as unknown as { _handle: Handle | null })._handle;
  const f = onreadFields(socket);
  if (f === null || handle === null || typeof handle.useUserBuffer !== 'function') return false;
  const s = socket as unknown as Record<symbol, unknown>;
  if (s[f.buffer] !== null || s[f.callback] !== null || s[f.generator] !== null) return false;
  s[f.buffer] = buffer;
  s[f.callback] = onRead;
  handle.useUserBuffer(buffer);
  return true;
}

/**
 * Back to 'data' events for whoever reads the socket next (node:http, which reads its sockets
 * natively on top of this). Only valid after readInto answered true.
 */
export function readIntoEnd(socket: Socket): void {
  const s = socket as unknown as Record<symbol, unknown>;
  const f = fields!;
  s[f.buffer] = null;
  s[f.callback] = null;
}
