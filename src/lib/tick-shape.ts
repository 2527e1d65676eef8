// Keeps the hidden class of Node's queued ticks alive, so process.nextTick stays on V8's fast path.
//
// process.nextTick queues each callback as an object literal with two computed (symbol) keys. V8
// records the hidden class ("map") such a literal is built with, and optimizes nextTick for it
// only while it has seen exactly one; a second one switches the literal to a generic runtime call
// for good. Those maps are held weakly: a full GC while no tick is queued (one always comes at the
// end of a server's startup) frees the map, the next tick builds a new one, and nextTick ends up
// optimized for "any map". An HTTP request costs about six ticks, so every request then pays for
// it (measured in docs/design/verify-path.md; `npm run bench` keeps a control row without this hold).
// Holding one tick object for the life of the process keeps its map, and with it the fast path,
// alive.
//
// Call this first, before the application's module graph is loaded (loading it can run a full GC
// too): the entry points import only this, call it, and then import the rest.
import { createHook } from 'node:async_hooks';

let held: object | undefined;

/** Whether the hold is in place: the server refuses to start without it (see server.ts). */
export function tickShapeHeld(): boolean {
  return held !== undefined;
}

export function holdTickObjectShape(): void {
  if (held) return;
  const hook = createHook({
    init(_asyncId, type, _triggerAsyncId, resource) {
      if (type === 'TickObject') held ??= resource;
    },
  });
  hook.enable();
  process.nextTick(() => {});
  hook.disable();
}
