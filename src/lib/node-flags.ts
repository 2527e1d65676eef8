// The Node.js flags the server runs with (`npm start`, `keyward serve`, the bench), and why.
//
// V8 sizes its young generation by recent allocation throughput: after a quiet spell (an idle
// night, a node held back behind a load balancer) it shrinks each semi-space to its 1 MB minimum
// and grows it back only as objects survive. A burst of verify traffic then meets a nursery a
// sixteenth of its usual size: five times the scavenges (250–300 against 45–60 in 5 s of load),
// each promoting whatever was in flight, and the old generation fills until a full collection
// stops the event loop for 6–14 ms. Seen after a 20–60 s pause; with the semi-space held at
// 16 MB, the most V8 gives it anyway under load, the same runs had no full collection and p99
// stayed with node:http's (docs/design/memory.md). The cost: the nursery's 32 MB stay committed
// while the node is idle.
//
// The flag must be on Node's command line: V8 reads it when the heap is set up, before any of
// our code runs, and Node does not accept it in NODE_OPTIONS.

export const SERVER_NODE_FLAGS: readonly string[] = ['--min-semi-space-size=16'];

/** The server flags missing from this process's command line. */
export function missingServerFlags(execArgv: readonly string[] = process.execArgv): string[] {
  return SERVER_NODE_FLAGS.filter((flag) => {
    const name = flag.split('=')[0]!;
    // V8 takes its flags with dashes or underscores, and any value counts as the operator's choice.
    return !execArgv.some((arg) => arg.replaceAll('_', '-').startsWith(`${name}=`));
  });
}
