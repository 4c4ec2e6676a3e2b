-- A delivery counts tries (a session counts attempts): one word per concept.
ALTER TABLE "Delivery" RENAME COLUMN "attempts" TO "tries";
ALTER TABLE "Delivery" RENAME COLUMN "nextAttemptAt" TO "nextTryAt";
ALTER INDEX "Delivery_status_nextAttemptAt_idx" RENAME TO "Delivery_status_nextTryAt_idx";

-- Nothing ever set it: a QR code's validity follows from when it was received.
ALTER TABLE "Event" DROP COLUMN "validUntil";
