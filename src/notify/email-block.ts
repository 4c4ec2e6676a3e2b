/** A piece of an email's body, rendered as text and as HTML by email-content.ts. */
export type Block =
  | { p: string }
  | { cta: { url: string; label: string } }
  | { qr: { cid: string; width: number; height: number; validUntil: Date } }
  | { small: string };
