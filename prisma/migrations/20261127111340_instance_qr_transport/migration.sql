-- CreateEnum
CREATE TYPE "QrTransport" AS ENUM ('websocket', 'rest');

-- AlterTable
ALTER TABLE "Instance" ADD COLUMN     "qrTransport" "QrTransport" NOT NULL DEFAULT 'websocket';
