import type { FleetContext } from "./context.js";

/** QR images past retention are deleted in batches; sessions and outcomes stay. */
export async function deleteOldQrImages(ctx: FleetContext): Promise<{ deleted: number }> {
  const cutoff = new Date(Date.now() - ctx.config.QRFLEET_QR_RETENTION_DAYS * 86_400_000);
  let deleted = 0;
  for (;;) {
    const n = await ctx.db.$executeRaw`
      DELETE FROM "QrCode" WHERE id IN (SELECT id FROM "QrCode" WHERE "receivedAt" < ${cutoff} LIMIT 5000)`;
    deleted += n;
    if (n < 5000) break;
  }
  return { deleted };
}
