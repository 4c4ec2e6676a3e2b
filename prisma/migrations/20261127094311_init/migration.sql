-- CreateEnum
CREATE TYPE "SessionTrigger" AS ENUM ('schedule', 'sweep', 'provider', 'admin', 'live');

-- CreateEnum
CREATE TYPE "SessionStatus" AS ENUM ('queued', 'running', 'authorized', 'already_logged', 'wrong_number', 'timed_out', 'failed', 'cancelled');

-- CreateEnum
CREATE TYPE "ChannelKind" AS ENUM ('email', 'webhook');

-- CreateEnum
CREATE TYPE "DeliveryStatus" AS ENUM ('pending', 'sent', 'failed', 'expired');

-- CreateTable
CREATE TABLE "Instance" (
    "id" UUID NOT NULL,
    "apiUrl" TEXT NOT NULL,
    "idInstance" TEXT NOT NULL,
    "tokenCiphertext" BYTEA NOT NULL,
    "label" TEXT,
    "expectedPhone" TEXT,
    "cron" TEXT,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "webhookTokenCiphertext" BYTEA,
    "maxAttempts" INTEGER,
    "backoffBaseMs" INTEGER,
    "backoffMaxMs" INTEGER,
    "lastState" TEXT,
    "lastStateAt" TIMESTAMP(3),
    "unlinkedSince" TIMESTAMP(3),
    "attention" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Instance_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QrSession" (
    "id" UUID NOT NULL,
    "instanceId" UUID NOT NULL,
    "trigger" "SessionTrigger" NOT NULL,
    "status" "SessionStatus" NOT NULL DEFAULT 'queued',
    "attempt" INTEGER NOT NULL DEFAULT 0,
    "maxAttempts" INTEGER NOT NULL,
    "backoffBaseMs" INTEGER NOT NULL,
    "backoffMaxMs" INTEGER NOT NULL,
    "dueAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "qrCount" INTEGER NOT NULL DEFAULT 0,
    "runId" UUID,
    "errorCode" TEXT,
    "error" TEXT,
    "accountData" JSONB,
    "phone" TEXT,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "startedAt" TIMESTAMP(3),
    "endedAt" TIMESTAMP(3),
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "QrSession_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QrAttempt" (
    "id" UUID NOT NULL,
    "sessionId" UUID NOT NULL,
    "number" INTEGER NOT NULL,
    "worker" TEXT,
    "resumes" INTEGER NOT NULL DEFAULT 0,
    "startedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "endedAt" TIMESTAMP(3),
    "outcome" TEXT,
    "errorCode" TEXT,
    "error" TEXT,
    "qrCount" INTEGER NOT NULL DEFAULT 0,

    CONSTRAINT "QrAttempt_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "QrCode" (
    "id" UUID NOT NULL,
    "sessionId" UUID NOT NULL,
    "attempt" INTEGER NOT NULL,
    "sequence" INTEGER NOT NULL,
    "png" BYTEA NOT NULL,
    "sha256" TEXT NOT NULL,
    "receivedAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "QrCode_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Operator" (
    "id" UUID NOT NULL,
    "name" TEXT NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Operator_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Channel" (
    "id" UUID NOT NULL,
    "operatorId" UUID NOT NULL,
    "kind" "ChannelKind" NOT NULL,
    "address" TEXT NOT NULL,
    "secretCiphertext" BYTEA,
    "enabled" BOOLEAN NOT NULL DEFAULT true,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Channel_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Assignment" (
    "instanceId" UUID NOT NULL,
    "operatorId" UUID NOT NULL,
    "tier" INTEGER NOT NULL DEFAULT 1,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Assignment_pkey" PRIMARY KEY ("instanceId","operatorId")
);

-- CreateTable
CREATE TABLE "Event" (
    "id" UUID NOT NULL,
    "type" TEXT NOT NULL,
    "instanceId" UUID NOT NULL,
    "sessionId" UUID,
    "attempt" INTEGER,
    "qrSequence" INTEGER,
    "payload" JSONB NOT NULL,
    "validUntil" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "Event_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "Delivery" (
    "id" UUID NOT NULL,
    "eventId" UUID NOT NULL,
    "channelId" UUID NOT NULL,
    "status" "DeliveryStatus" NOT NULL DEFAULT 'pending',
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "lastError" TEXT,
    "responseStatus" INTEGER,
    "responseBody" TEXT,
    "nextAttemptAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "sentAt" TIMESTAMP(3),
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updatedAt" TIMESTAMP(3) NOT NULL,

    CONSTRAINT "Delivery_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "Instance_idInstance_idx" ON "Instance"("idInstance");

-- CreateIndex
CREATE UNIQUE INDEX "Instance_apiUrl_idInstance_key" ON "Instance"("apiUrl", "idInstance");

-- CreateIndex
CREATE INDEX "QrSession_instanceId_createdAt_idx" ON "QrSession"("instanceId", "createdAt");

-- CreateIndex
CREATE INDEX "QrSession_status_dueAt_idx" ON "QrSession"("status", "dueAt");

-- CreateIndex
CREATE UNIQUE INDEX "QrAttempt_sessionId_number_key" ON "QrAttempt"("sessionId", "number");

-- CreateIndex
CREATE INDEX "QrCode_receivedAt_idx" ON "QrCode"("receivedAt");

-- CreateIndex
CREATE UNIQUE INDEX "QrCode_sessionId_sequence_key" ON "QrCode"("sessionId", "sequence");

-- CreateIndex
CREATE UNIQUE INDEX "QrCode_sessionId_sha256_key" ON "QrCode"("sessionId", "sha256");

-- CreateIndex
CREATE UNIQUE INDEX "Operator_name_key" ON "Operator"("name");

-- CreateIndex
CREATE UNIQUE INDEX "Channel_operatorId_kind_address_key" ON "Channel"("operatorId", "kind", "address");

-- CreateIndex
CREATE INDEX "Assignment_operatorId_idx" ON "Assignment"("operatorId");

-- CreateIndex
CREATE INDEX "Event_sessionId_idx" ON "Event"("sessionId");

-- CreateIndex
CREATE INDEX "Delivery_status_nextAttemptAt_idx" ON "Delivery"("status", "nextAttemptAt");

-- CreateIndex
CREATE UNIQUE INDEX "Delivery_eventId_channelId_key" ON "Delivery"("eventId", "channelId");

-- AddForeignKey
ALTER TABLE "QrSession" ADD CONSTRAINT "QrSession_instanceId_fkey" FOREIGN KEY ("instanceId") REFERENCES "Instance"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "QrAttempt" ADD CONSTRAINT "QrAttempt_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "QrSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "QrCode" ADD CONSTRAINT "QrCode_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "QrSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Channel" ADD CONSTRAINT "Channel_operatorId_fkey" FOREIGN KEY ("operatorId") REFERENCES "Operator"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Assignment" ADD CONSTRAINT "Assignment_instanceId_fkey" FOREIGN KEY ("instanceId") REFERENCES "Instance"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Assignment" ADD CONSTRAINT "Assignment_operatorId_fkey" FOREIGN KEY ("operatorId") REFERENCES "Operator"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_instanceId_fkey" FOREIGN KEY ("instanceId") REFERENCES "Instance"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Event" ADD CONSTRAINT "Event_sessionId_fkey" FOREIGN KEY ("sessionId") REFERENCES "QrSession"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Delivery" ADD CONSTRAINT "Delivery_eventId_fkey" FOREIGN KEY ("eventId") REFERENCES "Event"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- AddForeignKey
ALTER TABLE "Delivery" ADD CONSTRAINT "Delivery_channelId_fkey" FOREIGN KEY ("channelId") REFERENCES "Channel"("id") ON DELETE CASCADE ON UPDATE CASCADE;

-- At most one non-terminal session per instance: two workers can never hold QR sessions
-- for the same instance, whatever the queue does (BullMQ is at-least-once).
CREATE UNIQUE INDEX "QrSession_one_open_per_instance" ON "QrSession"("instanceId") WHERE "status" IN ('queued', 'running');
