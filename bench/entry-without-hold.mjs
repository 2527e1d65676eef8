// Control for the benchmark: the server started without holdTickObjectShape() (src/lib/tick-shape.ts),
// so the bench shows what that hold is worth on the machine it runs on.
const { serve } = await import('../dist/server.js');
await serve({ withoutTickHold: true });
