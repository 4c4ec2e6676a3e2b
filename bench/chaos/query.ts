import pg from "pg";

/**
 * One statement on a connection of its own, closed after: the fault run reads PostgreSQL while
 * PostgreSQL restarts under it, so it keeps no pool whose connections would die in between.
 */
export async function queryOnce<R extends pg.QueryResultRow>(databaseUrl: string, text: string, values: unknown[] = []): Promise<R[]> {
  const client = new pg.Client({ connectionString: databaseUrl, connectionTimeoutMillis: 5_000 });
  client.on("error", () => undefined);
  await client.connect();
  try {
    return (await client.query<R>(text, values)).rows;
  } finally {
    await client.end().catch(() => undefined);
  }
}
