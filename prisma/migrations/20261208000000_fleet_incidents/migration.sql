-- A stretch of time in which more of the fleet logged out than QRFLEET_STORM_* allow. At most one is open.
CREATE TABLE "FleetIncident" (
    "id" UUID NOT NULL,
    "open" BOOLEAN NOT NULL DEFAULT true,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),
    "firstAt" TIMESTAMP(3) NOT NULL,
    "latestAt" TIMESTAMP(3) NOT NULL,
    "peak" INTEGER NOT NULL,
    "threshold" INTEGER NOT NULL,

    CONSTRAINT "FleetIncident_pkey" PRIMARY KEY ("id")
);

CREATE UNIQUE INDEX "FleetIncident_one_open" ON "FleetIncident"("open") WHERE "open";

-- Set while an incident holds the channel in digest mode: it would get more than a few messages a minute.
ALTER TABLE "Channel" ADD COLUMN "stormHeldSince" TIMESTAMP(3);

-- The storm check counts the sessions of the last minutes.
CREATE INDEX "QrSession_createdAt_idx" ON "QrSession"("createdAt");
