-- The delivery mode of a channel: every event at once, or grouped into a digest. NULL is the default
-- for its place: the email of a fleet-wide operator is digested, everything else is immediate.
CREATE TYPE "DeliveryMode" AS ENUM ('immediate', 'digest');

ALTER TABLE "Channel" ADD COLUMN "mode" "DeliveryMode",
ADD COLUMN "lastDigestAt" TIMESTAMP(3);

-- held: waits for the next digest of its channel. digested: went out in the digest named by digestId.
ALTER TYPE "DeliveryStatus" ADD VALUE 'held';
ALTER TYPE "DeliveryStatus" ADD VALUE 'digested';

ALTER TABLE "Delivery" ADD COLUMN "digestId" UUID;

-- A digest is about many instances, a fleet incident about none.
ALTER TABLE "Event" ALTER COLUMN "instanceId" DROP NOT NULL;

CREATE INDEX "Delivery_digestId_idx" ON "Delivery"("digestId");
