-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "partnerAccount" TEXT;
