import { openDatabase } from "../../src/db.js";
import type { FleetContext } from "../../src/fleet/context.js";
import { addInstance } from "../../src/fleet/instances/instances.js";
import { addOperator, assign } from "../../src/fleet/operators/operators.js";
import { enqueueSession, enqueueSessionsFor } from "../../src/fleet/sessions/sessions.js";
import { migrate } from "../../src/migrate.js";
import { createQueues } from "../../src/queues.js";
import { generateInstances, type InstanceDefinition, type Script } from "../../src/simulator/index.js";

/** The demo's simulated fleet: one instance per fate worth seeing, and the operator who looks after them. */

export const OPERATOR_NAME = "Demo operator";
export const OPERATOR_EMAIL = "operator@example.com";
const EXPECTED_PHONE = "79001234567";

interface DemoCase {
  label: string;
  /** What the newcomer should expect to see, as printed in the banner. */
  story: string;
  script: Partial<Script>;
  expectedPhone?: string;
}

const CASES: DemoCase[] = [
  { label: "Front desk", story: "scanned after ~20 s → authorized", script: { fate: "scan", scanAfterMs: 20_000 } },
  { label: "Warehouse", story: "never scanned: 3 attempts time out with backoff, then a final email", script: { fate: "never" } },
  { label: "Head office", story: "already linked → already_logged, no QR", script: { fate: "authorized" } },
  { label: "Night shift", story: "wrong token → failed at once, needs attention", script: { fate: "wrong_token" } },
  {
    label: "Field sales",
    story: `scanned by another phone than ${EXPECTED_PHONE} → wrong_number`,
    script: { fate: "scan", scanAfterMs: 12_000, phone: "79995550000" },
    expectedPhone: EXPECTED_PHONE,
  },
  { label: "Support line", story: "provider error on every attempt → retried, then failed", script: { fate: "provider_error" } },
];

export interface DemoInstance extends DemoCase {
  idInstance: string;
  token: string;
}

export const DEMO_FLEET: DemoInstance[] = generateInstances(CASES.length, { idPrefix: "7700", seed: "qrfleet-demo" }).map(
  (address, i) => ({ ...CASES[i]!, ...address }),
);

/** A storm: branches nobody is assigned to, all logged out at once; one in six is scanned after a while. */
export const STORM_OPERATOR = { name: "Fleet desk", email: "fleet@example.com" } as const;
export const STORM_FLEET: DemoInstance[] = generateInstances(30, { idPrefix: "7701", seed: "qrfleet-demo-storm" }).map((address, i) => ({
  ...address,
  label: `Branch ${String(i + 1).padStart(2, "0")}`,
  story: i % 6 === 5 ? "scanned after ~25 s" : "never scanned",
  script: i % 6 === 5 ? { fate: "scan", scanAfterMs: 25_000 } : { fate: "never" },
}));

/** Scripts for startSimulator: rotation 5 s and a 30 s window, so three attempts fit in about two minutes. */
export function simulatorOptions(): { defaults: Partial<Script>; instances: InstanceDefinition[] } {
  return {
    defaults: { rotationMs: 5_000, scanWindowMs: 30_000 },
    instances: [...DEMO_FLEET, ...STORM_FLEET].map((d) => ({ idInstance: d.idInstance, token: d.token, ...d.script })),
  };
}

/**
 * Every run starts the story again: the previous run's demo instances (their sessions, QR codes
 * and deliveries go with them), its operator, and the demo prefix's queues are removed. Only
 * these: other rows in the database stay. The schema is migrated first, as the daemon would.
 */
export async function resetDemoFleet(databaseUrl: string, redisUrl: string, redisPrefix: string): Promise<void> {
  await migrate(databaseUrl);
  const { db } = openDatabase(databaseUrl, 2);
  try {
    await db.instance.deleteMany({ where: { idInstance: { in: [...DEMO_FLEET, ...STORM_FLEET].map((d) => d.idInstance) } } });
    await db.operator.deleteMany({ where: { name: { in: [OPERATOR_NAME, STORM_OPERATOR.name] } } });
  } finally {
    await db.$disconnect();
  }
  const queues = createQueues({ url: redisUrl, cluster: false, prefix: redisPrefix });
  try {
    for (const q of [queues.session, queues.notify, queues.sweep]) await q.obliterate({ force: true });
  } finally {
    await queues.close();
  }
}

export interface SeededInstance extends DemoInstance {
  id: string;
}

/** Adds the instances and the operator through the same fleet functions the CLI and API use, then enqueues. */
export async function seedDemoFleet(
  ctx: FleetContext,
  apiUrl: string,
  webhookUrl: string,
): Promise<{ instances: SeededInstance[]; webhookSecret: string }> {
  const instances: SeededInstance[] = [];
  for (const d of DEMO_FLEET) {
    const view = await addInstance(ctx, {
      apiUrl,
      idInstance: d.idInstance,
      token: d.token,
      label: d.label,
      ...(d.expectedPhone && { phone: d.expectedPhone }),
    });
    instances.push({ ...d, id: view.id });
  }
  const { operator, webhookSecret } = await addOperator(ctx, { name: OPERATOR_NAME, email: OPERATOR_EMAIL, webhook: webhookUrl });
  if (!webhookSecret) throw new Error("addOperator returned no webhook secret for a webhook channel");
  for (const inst of instances) await assign(ctx, inst.id, operator.id);
  return { instances, webhookSecret };
}

/** Separate from seeding so the webhook sink knows the secret before the first QR is sent. */
export async function enqueueDemoSessions(ctx: FleetContext, instances: SeededInstance[]): Promise<void> {
  for (const inst of instances) await enqueueSession(ctx, inst.id, "admin");
}

/**
 * The storm: its branches, unassigned, and the fleet-wide operator who hears of them (email in
 * digest mode, its default), then every branch logged out at once as a sweep would find them.
 * Only on the demo's own database: on another, its fleet-wide operators would hear of it too.
 */
export async function startDemoStorm(ctx: FleetContext, apiUrl: string): Promise<SeededInstance[]> {
  await ctx.db.fleetIncident.updateMany({ where: { open: true }, data: { open: false, endedAt: new Date() } });
  const branches: SeededInstance[] = [];
  for (const b of STORM_FLEET) {
    const view = await addInstance(ctx, { apiUrl, idInstance: b.idInstance, token: b.token, label: b.label });
    branches.push({ ...b, id: view.id });
  }
  await addOperator(ctx, { name: STORM_OPERATOR.name, email: STORM_OPERATOR.email });
  await enqueueSessionsFor(ctx, branches.map((b) => b.id), "sweep");
  return branches;
}
