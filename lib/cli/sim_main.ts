/**
 * Stand-alone entry for `pubsub sim` until main.ts dispatches to it:
 * `deno run -A lib/cli/sim_main.ts --seeds 1000`.
 *
 * @module
 */

import { simCommand } from "./sim.ts";

if (import.meta.main) {
  Deno.exit(await simCommand(Deno.args));
}
