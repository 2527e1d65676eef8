// Entry point: `node dist/main.js` runs the server. It loads nothing but the tick-shape hold
// before it (see src/lib/tick-shape.ts), then the application.
import { holdTickObjectShape } from './lib/tick-shape.js';

holdTickObjectShape();
const { serve } = await import('./server.js');
serve().catch((err: unknown) => {
  process.stderr.write(`keyward: failed to start: ${err instanceof Error ? err.stack : String(err)}\n`);
  process.exit(1);
});
