// The benchmark's provider: a simulator in its own process so its CPU is not counted as ours.
import { generateInstances, startSimulator } from "../src/simulator/index.js";

const count = Number(process.argv[2] ?? 1000);
const rotationMs = Number(process.argv[3] ?? 20_000);
const windowMs = Number(process.argv[4] ?? 100_000);
const instances = generateInstances(count, { idPrefix: "7301", seed: 7 });
const sim = await startSimulator({
  defaults: { fate: "never", rotationMs, scanWindowMs: windowMs },
  instances,
  uniqueImages: false,
  imagePoolSize: 64,
});
process.send?.({ url: sim.url });
process.on("message", (msg) => {
  if (msg === "stats") process.send?.({ stats: sim.stats() });
});
process.on("SIGTERM", () => void sim.close().then(() => process.exit(0)));
