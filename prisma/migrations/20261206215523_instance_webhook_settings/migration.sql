-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "restoreSettings" BOOLEAN NOT NULL DEFAULT false,
ADD COLUMN     "settingsCheckDueAt" TIMESTAMP(3),
ADD COLUMN     "settingsCheckedAt" TIMESTAMP(3),
ADD COLUMN     "settingsFingerprint" TEXT,
ADD COLUMN     "settingsSeen" JSONB,
ADD COLUMN     "webhookSetup" TEXT;
