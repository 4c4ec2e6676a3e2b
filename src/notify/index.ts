export { EVENT_TYPES, isEventType, type AttemptResult, type EventType, type EventView, type QrView } from "./types.js";
export { recordEvent, tierIsDue, wants, type RecordEventInput, type RoutingOptions, type Tx } from "./outbox.js";
export { sendDelivery, type DeliverDeps, type DeliveryResult, type DeliveryOutcome } from "./deliver.js";
export { signLiveToken, verifyLiveToken, liveUrl, type LiveTokenCheck } from "./live-link.js";
export {
  createMailer,
  composeEmail,
  classifySmtpError,
  type Mailer,
  type MailerOptions,
  type OutgoingEmail,
  type ComposedEmail,
  type EmailAttachment,
  type EmailContext,
} from "./email.js";
export { buildWebhookBody, postWebhook, classifyResponse, webhookMessageId, type WebhookBody, type WebhookRequest } from "./webhook.js";
export { DEFAULT_RETRY_POLICY, OUTCOME_SCHEDULE_MS, QR_SCHEDULE_MS, nextRetryDelayMs, type RetryPolicy } from "./schedule.js";
export { enlargeQr, type QrPicture } from "./qr-image.js";
