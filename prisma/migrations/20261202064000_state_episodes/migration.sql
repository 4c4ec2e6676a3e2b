-- CreateTable
CREATE TABLE "StateEpisode" (
    "id" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "state" TEXT NOT NULL,
    "since" TIMESTAMP(3) NOT NULL,
    "seenAt" TIMESTAMP(3) NOT NULL,
    "rebootedAt" TIMESTAMP(3),
    "alertedAt" TIMESTAMP(3),
    "deadline" TIMESTAMP(3),
    "endedAt" TIMESTAMP(3),
    "endState" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "StateEpisode_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "StateEpisode_instanceId_since_idx" ON "StateEpisode"("instanceId", "since");

-- AddForeignKey
ALTER TABLE "StateEpisode" ADD CONSTRAINT "StateEpisode_instanceId_fkey" FOREIGN KEY ("instanceId") REFERENCES "Instance"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- One open episode per instance: concurrent sweeps, a second daemon and the provider's webhook
-- all meet at this index, so a stretch is alerted once (Prisma's schema cannot say "partial").
CREATE UNIQUE INDEX "StateEpisode_one_open_per_instance" ON "StateEpisode"("instanceId") WHERE "endedAt" IS NULL;
