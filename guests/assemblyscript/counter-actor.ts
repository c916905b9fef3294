// A counter actor in the style of Loom's `counter-actor.ts`: one export,
// `execute(command: string): string`, whose state is a global of the
// module (in linear memory and globals, not in a key-value store). The
// commands: `increment N`, `decrement N`, `get`, `reset`; anything else
// throws (env.abort), which is a trap for the host.
//
// Built by scripts/build-guests.sh:
//   asc counter-actor.ts --optimize --exportRuntime --runtime incremental
// (the incremental runtime collects garbage on its own, so memory stays bounded
// over millions of messages; Loom built with the stub runtime, which never frees)
// into target/guests/out/as-counter-actor.wasm. The durable-actor tests send
// it "increment 5", "increment 3", "decrement 2", "get" as separate
// `wasmhost actor send` processes and expect 5, 8, 6, 6.

let count: i64 = 0;
// A history of the last commands, kept in managed memory: state that lives in
// the heap, not only in a global.
let history: string[] = [];

function amount(arg: string): i64 {
  const n = I64.parseInt(arg, 10);
  if (arg.length == 0 || n.toString() != arg) throw new Error('not an integer: "' + arg + '"');
  return n;
}

export function execute(command: string): string {
  const space = command.indexOf(" ");
  const verb = space < 0 ? command : command.substring(0, space);
  const arg = space < 0 ? "" : command.substring(space + 1);
  if (verb == "increment") {
    count += amount(arg);
  } else if (verb == "decrement") {
    count -= amount(arg);
  } else if (verb == "get") {
    // No change.
  } else if (verb == "reset") {
    count = 0;
  } else {
    throw new Error('unknown command: "' + command + '"');
  }
  history.push(command);
  if (history.length > 16) history.shift();
  return count.toString();
}

/// The commands applied so far (at most the last 16), one per line.
export function log(_: string): string {
  return history.join("\n");
}
