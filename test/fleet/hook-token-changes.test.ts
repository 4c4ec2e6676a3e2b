import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { addInstance, removeInstance, updateInstance } from "../../src/fleet/instances/instances.js";
import { subscriberName } from "../../src/queues.js";
import type { Daemon } from "../../workers/daemon.js";
import { newIdInstance, newToken, startTestDaemon, testFleet, waitFor } from "../support/fleet.js";

/**
 * A webhook token set, changed or removed from another process (the CLI) is taken by a running
 * daemon at once, long before its cache of the fleet's tokens would be read again; and one whose
 * announcement the daemon could not hear (its Redis connection was down) once it is back.
 */

let d: Daemon;
let cli: ReturnType<typeof testFleet>;

beforeAll(async () => {
  d = await startTestDaemon({ QRFLEET_PROVIDER_HOOK_CACHE_MS: "600000" });
  cli = testFleet({ QRFLEET_REDIS_PREFIX: d.ctx.config.QRFLEET_REDIS_PREFIX });
});
afterAll(async () => {
  await cli?.close();
  await d?.close();
});

async function hook(idInstance: string, token: string): Promise<number> {
  const res = await fetch(`${d.url}/hooks/greenapi`, {
    method: "POST",
    headers: { "content-type": "application/json", authorization: `Bearer ${token}` },
    body: JSON.stringify({ typeWebhook: "stateInstanceChanged", instanceData: { idInstance }, stateInstance: "authorized", timestamp: Math.floor(Date.now() / 1000) }),
  });
  await res.arrayBuffer();
  return res.status;
}

const answers = (idInstance: string, token: string, status: number) =>
  waitFor(`the daemon to answer ${status}`, async () => (await hook(idInstance, token)) === status, 3_000, 50);

describe("webhook tokens changed by another process", () => {
  it("are taken by the daemon at once: added, changed, removed", async () => {
    const idInstance = newIdInstance();
    const [first, second] = [`hook-${newToken()}`, `hook-${newToken()}`];
    expect(await hook(idInstance, first)).toBe(401);

    const inst = await addInstance(cli, { apiUrl: "http://127.0.0.1:9", idInstance, token: newToken(), webhookToken: first });
    await answers(idInstance, first, 200);

    await updateInstance(cli, inst.id, { webhookToken: second });
    await answers(idInstance, first, 401);
    expect(await hook(idInstance, second)).toBe(200);

    await removeInstance(cli, inst.id);
    await answers(idInstance, second, 401);
  });

  it("are read again when the daemon is back from losing Redis: a removal it was not told of stops being accepted", async () => {
    const idInstance = newIdInstance();
    const token = `hook-${newToken()}`;
    const inst = await addInstance(cli, { apiUrl: "http://127.0.0.1:9", idInstance, token: newToken(), webhookToken: token });
    await answers(idInstance, token, 200);

    // As if the announcement were lost: the row changes, nobody is told.
    await cli.db.instance.update({ where: { id: inst.id }, data: { webhookTokenCiphertext: null } });
    expect(await hook(idInstance, token)).toBe(200);

    const name = subscriberName(d.ctx.config.QRFLEET_REDIS_PREFIX);
    const list = (await cli.queues.connection.call("CLIENT", "LIST", "TYPE", "pubsub")) as string;
    const ids = list.split("\n").filter((line) => line.includes(` name=${name} `)).map((line) => /\bid=(\d+)/.exec(line)![1]!);
    expect(ids).toHaveLength(1);
    await cli.queues.connection.client("KILL", "ID", ids[0]!);
    await answers(idInstance, token, 401);
  });
});

