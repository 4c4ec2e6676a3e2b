-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "hookSeenAt" TIMESTAMP(3),
ADD COLUMN     "hookState" TEXT,
ADD COLUMN     "sweepPhase" INTEGER NOT NULL DEFAULT (floor((random() * (65536)::double precision)))::integer;

-- CreateIndex
CREATE INDEX "Instance_sweepPhase_idx" ON "Instance"("sweepPhase");
