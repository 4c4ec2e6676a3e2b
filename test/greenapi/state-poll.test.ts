import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { InvalidTokenError, ProviderProtocolError, ProviderUnavailableError } from "../../src/greenapi/errors.js";
import { StatePoller } from "../../src/greenapi/state-poll.js";
import { pollState } from "../support/state-poll.js";

/** The sweep's own client against a provider this file scripts: what each answer becomes. */

const TOKEN = "f".repeat(50);
let server: Server;
let answer: (req: IncomingMessage, res: ServerResponse) => void = (_req, res) => res.end();
let poller: StatePoller;
let apiUrl: string;

beforeAll(async () => {
  server = createServer((req, res) => answer(req, res));
  await new Promise<void>((ready) => server.listen(0, "127.0.0.1", ready));
  apiUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  poller = new StatePoller(2_000, 4, { allowPrivate: true, knob: "QRFLEET_ALLOW_PRIVATE_PROVIDER" });
});
afterAll(async () => {
  await poller.close();
  server.closeAllConnections();
  await new Promise((done) => server.close(done));
});

const poll = () => pollState(poller, { apiUrl, idInstance: "7103000001", token: TOKEN });
const failure = (p: Promise<unknown>) => p.then(() => expect.fail("the poll succeeded"), (err: Error) => err);
const json = (status: number, body: unknown) => (_req: IncomingMessage, res: ServerResponse) =>
  res.writeHead(status, { "content-type": "application/json" }).end(typeof body === "string" ? body : JSON.stringify(body));

describe("StatePoller", () => {
  it("asks getStateInstance over kept-alive connections and reads the state", async () => {
    const seen: string[] = [];
    const sockets = new Set<unknown>();
    answer = (req, res) => {
      seen.push(req.url!);
      sockets.add(req.socket);
      json(200, { stateInstance: "authorized" })(req, res);
    };
    for (let i = 0; i < 10; i++) expect(await poll()).toEqual({ state: "authorized", raw: "authorized" });
    expect(seen).toEqual(new Array(10).fill(`/waInstance7103000001/getStateInstance/${TOKEN}`));
    expect(sockets.size).toBeLessThanOrEqual(2);
  });

  it("reads a body sent in pieces", async () => {
    answer = (_req, res) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.write('{"stateInst');
      setTimeout(() => res.end('ance":"notAuthorized"}'), 20);
    };
    expect(await poll()).toEqual({ state: "notAuthorized", raw: "notAuthorized" });
  });

  it("refuses a body over 4 KiB, whether sent at once or streamed, and names the call with its token masked", async () => {
    const big = JSON.stringify({ stateInstance: "x".repeat(100_000) });
    answer = json(200, big);
    const once = await failure(poll());
    expect(once).toBeInstanceOf(ProviderProtocolError);
    expect(once.message).toMatch(/answered a body over 4096 bytes/);
    expect(once.message).not.toContain(TOKEN);
    answer = (_req, res) => {
      res.writeHead(200);
      res.write(big.slice(0, 3000));
      setTimeout(() => res.end(big.slice(3000)), 20);
    };
    expect(await failure(poll())).toBeInstanceOf(ProviderProtocolError);
    // The connection it cut is not reused for garbage: the next poll reads a clean answer.
    answer = json(200, { stateInstance: "authorized" });
    expect(await poll()).toMatchObject({ state: "authorized" });
  });

  it("turns a body without a state, a refused token and a dead provider into the provider's errors", async () => {
    for (const body of ["<html>", { state: "authorized" }, { stateInstance: 5 }, { stateInstance: "" }]) {
      answer = json(200, body);
      const err = await failure(poll());
      expect(err, JSON.stringify(body)).toBeInstanceOf(ProviderProtocolError);
      expect(err.message).toContain("without a stateInstance");
    }
    answer = json(401, "Unauthorized");
    expect(await failure(poll())).toBeInstanceOf(InvalidTokenError);
    answer = (req) => req.socket.destroy();
    const dead = await failure(poll());
    expect(dead).toBeInstanceOf(ProviderUnavailableError);
    expect(dead.message).not.toContain(TOKEN);
  });
});
