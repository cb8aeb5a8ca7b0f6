-- CreateTable
CREATE TABLE "ConnectTicketUse" (
    "nonceHash" TEXT NOT NULL,
    "expiresAt" TIMESTAMP(3) NOT NULL,
    "createdAt" TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "ConnectTicketUse_pkey" PRIMARY KEY ("nonceHash")
);

-- CreateIndex
CREATE INDEX "ConnectTicketUse_expiresAt_idx" ON "ConnectTicketUse"("expiresAt");
