#!/usr/bin/env node
// The keyward command (src/cli/commands.ts). Like the server's entry point, it holds Node's
// tick-object shape before loading anything else, since `keyward serve` runs the server.
import { holdTickObjectShape } from '../lib/tick-shape.js';

holdTickObjectShape();
await import('./commands.js');
