import fastifySwagger from "@fastify/swagger";
import type { FastifyInstance } from "fastify";
import { jsonSchemaTransform } from "fastify-type-provider-zod";
import type { OpenAPIV3 } from "openapi-types";
import { z } from "zod";
import { packageVersion } from "../../paths.js";

/**
 * Collects every admin route registered after it (this plugin's scope is /api) into an OpenAPI 3
 * document made from the routes' zod schemas. The provider's webhook, health, metrics, the queue
 * board and live pages are outside /api and stay out of it.
 */
export async function collectOpenApi(app: FastifyInstance): Promise<void> {
  await app.register(fastifySwagger, {
    openapi: {
      openapi: "3.0.3",
      info: {
        title: "qrfleet admin API",
        version: packageVersion(),
        description: "Instances, operators, QR sessions and deliveries of a qrfleet daemon. Errors are `{ error: { code, message, details? } }`.",
      },
      components: {
        securitySchemes: {
          adminToken: { type: "http", scheme: "bearer", description: "QRFLEET_ADMIN_TOKEN" },
        },
      },
      security: [{ adminToken: [] }],
    },
    transform: jsonSchemaTransform,
  });
}

/**
 * `GET /api/openapi.json` sits behind the admin token like the rest of /api: the document names
 * nothing secret, but it maps the write surface of the fleet, and only an admin needs it.
 */
export function openApiRoute(app: FastifyInstance): void {
  app.get(
    "/openapi.json",
    { schema: { summary: "this document", response: { 200: z.looseObject({ openapi: z.string() }).describe("an OpenAPI 3 document") } } },
    async () => optionalBodies(app.swagger() as OpenAPIV3.Document),
  );
}

/**
 * @fastify/swagger marks every body required, but an absent body is read as `{}` here
 * (src/http/input.ts): a body whose schema requires no field may be left out.
 */
function optionalBodies(doc: OpenAPIV3.Document): OpenAPIV3.Document {
  for (const item of Object.values(doc.paths)) {
    for (const op of Object.values(item ?? {})) {
      const body = (op as OpenAPIV3.OperationObject).requestBody as OpenAPIV3.RequestBodyObject | undefined;
      const schema = body?.content["application/json"]?.schema as OpenAPIV3.SchemaObject | undefined;
      if (body && schema?.type === "object" && !schema.required?.length) body.required = false;
    }
  }
  return doc;
}
