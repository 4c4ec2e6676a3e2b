// Child process of the enqueue-storm test: N concurrent enqueues of one instance, prints the session ids.
import { loadConfig } from "../../src/config.js";
import { createLogger } from "../../src/log.js";
import { openFleet } from "../../src/wiring/runtime.js";
import { enqueueSession } from "../../src/fleet/sessions/sessions.js";

const [instance, count] = process.argv.slice(2);
const ctx = openFleet(loadConfig(), createLogger({ level: "silent" }));
const results = await Promise.all(
  Array.from({ length: Number(count) }, () => enqueueSession(ctx, instance!, "admin")),
);
console.log(JSON.stringify(results.map((r) => ({ id: r.session.id, created: r.created }))));
await ctx.close();
