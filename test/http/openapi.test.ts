import { validate } from "@readme/openapi-parser";
import type { FastifyInstance } from "fastify";
import type { OpenAPIV3 } from "openapi-types";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { newIdInstance, newToken } from "../support/fleet.js";
import { ADMIN_TOKEN, Recorder, startHttp, type TestFleet } from "./harness.js";

let ctx: TestFleet;
let app: FastifyInstance;
let close: () => Promise<void>;
let http: Recorder;
let doc: OpenAPIV3.Document;

beforeAll(async () => {
  ({ ctx, app, close } = await startHttp());
  http = new Recorder(app);
  const res = await http.api("GET", "/api/openapi.json");
  expect(res.statusCode).toBe(200);
  doc = res.json();
});
afterAll(async () => close());

const METHODS = ["get", "post", "put", "patch", "delete"] as const;

/** `/api/instances/:ref` as the router has it → `/api/instances/{ref}` as OpenAPI writes it. */
const openApiPath = (url: string) => url.replace(/:(\w+)/g, "{$1}");

/**
 * Every route fastify's router holds under /api, as "METHOD /api/{param}" (HEAD, made from each
 * GET, aside), read from its route tree: one line per path segment, indented four per level.
 */
function adminRoutes(): string[] {
  const segments: string[] = [];
  const routes: string[] = [];
  for (const line of app.printRoutes({ commonPrefix: false }).split("\n")) {
    const m = /^([│ ]*)[├└]── (.+?) \(([^)]+)\)$/.exec(line);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    segments[depth] = m[2]!;
    const path = segments.slice(0, depth + 1).join("");
    if (!path.startsWith("/api/")) continue;
    for (const method of m[3]!.split(", ")) if (method !== "HEAD") routes.push(`${method} ${openApiPath(path)}`);
  }
  return routes;
}

function operation(path: string, method: (typeof METHODS)[number]): OpenAPIV3.OperationObject {
  const op = doc.paths[path]?.[method];
  expect(op, `${method.toUpperCase()} ${path}`).toBeDefined();
  return op!;
}

describe("GET /api/openapi.json", () => {
  it("needs the admin token, like the rest of /api", async () => {
    for (const authorization of [undefined, "Bearer wrong-token-0000000000", `Basic ${Buffer.from(`x:${ADMIN_TOKEN}`).toString("base64")}`]) {
      const res = await app.inject({ method: "GET", url: "/api/openapi.json", headers: authorization ? { authorization } : {} });
      expect(res.statusCode).toBe(401);
      expect(res.json()).toEqual({ error: { code: "unauthorized", message: expect.any(String) } });
      expect(res.body).not.toContain("openapi");
    }
  });

  it("is a valid OpenAPI 3 document with the bearer scheme required everywhere", async () => {
    const result = await validate(structuredClone(doc) as never);
    expect(result.valid, result.valid ? "" : JSON.stringify(result.errors)).toBe(true);
    // The validator does refuse a broken document: an operation without its responses.
    const broken = structuredClone(doc);
    delete (broken.paths["/api/status"]!.get as Partial<OpenAPIV3.OperationObject>).responses;
    expect((await validate(broken as never)).valid).toBe(false);
    expect(doc.openapi).toMatch(/^3\./);
    expect(doc.components?.securitySchemes?.adminToken).toMatchObject({ type: "http", scheme: "bearer" });
    expect(doc.security).toEqual([{ adminToken: [] }]);
  });

  it("lists every route registered under /api with its method, and nothing outside /api", () => {
    const registered = adminRoutes();
    expect(registered.length).toBeGreaterThan(20);
    const documented = Object.entries(doc.paths).flatMap(([path, item]) =>
      METHODS.filter((m) => item?.[m]).map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(new Set(documented)).toEqual(new Set(registered));
    expect(documented.every((r) => r.split(" ")[1]!.startsWith("/api/"))).toBe(true);
  });

  it("describes the error shape and the main success codes", () => {
    const list = operation("/api/instances", "get").responses;
    expect(Object.keys(list)).toEqual(expect.arrayContaining(["200", "400", "401"]));
    const created = operation("/api/instances", "post").responses;
    expect(Object.keys(created)).toEqual(expect.arrayContaining(["201", "400", "401", "409"]));
    const enqueue = operation("/api/instances/{ref}/sessions", "post").responses;
    expect(Object.keys(enqueue)).toEqual(expect.arrayContaining(["200", "201", "404"]));
    const error = (list["400"] as OpenAPIV3.ResponseObject).content?.["application/json"]?.schema as OpenAPIV3.SchemaObject;
    const inner = error.properties?.error as OpenAPIV3.SchemaObject;
    expect(inner.required).toEqual(expect.arrayContaining(["code", "message"]));
  });

  it("documents query and body fields that the API then accepts, and refuses what violates them with 400", async () => {
    const query = operation("/api/instances", "get").parameters as OpenAPIV3.ParameterObject[];
    const attention = query.find((p) => p.name === "attention" && p.in === "query");
    expect((attention?.schema as OpenAPIV3.SchemaObject).enum).toEqual(["true", "false"]);
    expect((await http.api("GET", "/api/instances?attention=true&limit=5")).statusCode).toBe(200);
    const wrongEnum = await http.api("GET", "/api/instances?attention=maybe");
    expect(wrongEnum.statusCode).toBe(400);
    expect(wrongEnum.json().error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/attention must be true or false/) });
    expect((await http.api("GET", "/api/instances?colour=blue")).statusCode).toBe(400);

    const body = bodySchema("/api/instances", "post");
    expect(body.required).toEqual(expect.arrayContaining(["apiUrl", "idInstance", "token"]));
    expect(body.additionalProperties).toBe(false);
    const instance = { apiUrl: "https://7103.api.greenapi.com", idInstance: newIdInstance(), token: newToken() };
    expect(Object.keys(instance).every((k) => k in body.properties!)).toBe(true);
    const added = await http.api("POST", "/api/instances", instance);
    expect(added.statusCode).toBe(201);
    const missing = await http.api("POST", "/api/instances", { apiUrl: instance.apiUrl, token: newToken() });
    expect(missing.statusCode).toBe(400);
    expect(missing.json().error).toMatchObject({ code: "invalid_input", message: expect.stringMatching(/idInstance/), details: { issues: expect.any(Array) } });

    const enqueue = operation("/api/instances/{ref}/sessions", "post").requestBody as OpenAPIV3.RequestBodyObject;
    expect(enqueue.required).toBe(false);
    expect((await http.request({ method: "POST", url: `/api/instances/${added.json().id}/sessions`, headers: { authorization: `Bearer ${ADMIN_TOKEN}` } })).statusCode).toBe(201);
    expect((await http.api("POST", `/api/instances/${added.json().id}/sessions`, { now: true })).statusCode).toBe(400);
    const importBody = operation("/api/instances/import", "post").requestBody as OpenAPIV3.RequestBodyObject;
    expect(Object.keys(importBody.content).sort()).toEqual(["application/json", "text/csv"]);

    const assign = bodySchema("/api/assignments", "post");
    expect((assign.properties!.tier as OpenAPIV3.SchemaObject).type).toBe("number");
    const badTier = await http.api("POST", "/api/assignments", { instance: added.json().id, operator: "nobody", tier: "high" });
    expect(badTier.statusCode).toBe(400);
    expect(badTier.json().error.message).toMatch(/tier must be a number/);
  });

  it("carries no secret: no token, no signing secret, no example values", () => {
    const text = JSON.stringify(doc);
    for (const secret of [ADMIN_TOKEN, ctx.config.QRFLEET_SECRET_KEY]) if (secret) expect(text).not.toContain(secret);
    expect(text).not.toMatch(/whsec_[A-Za-z0-9+/=]{8,}/);
    expect(text).not.toMatch(/"examples?"\s*:/);
    expect(text).not.toContain("/hooks/greenapi");
  });
});

function bodySchema(path: string, method: (typeof METHODS)[number]): OpenAPIV3.SchemaObject {
  const body = operation(path, method).requestBody as OpenAPIV3.RequestBodyObject;
  return body.content["application/json"]!.schema as OpenAPIV3.SchemaObject;
}
