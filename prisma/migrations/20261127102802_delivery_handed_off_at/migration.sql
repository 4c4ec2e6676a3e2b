-- AlterTable
ALTER TABLE "Delivery" ADD COLUMN     "handedOffAt" TIMESTAMP(3);
