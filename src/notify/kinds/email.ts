import { liveLinkFor, withLiveLinks } from "../send.js";
import { isFleetView } from "../types.js";
import { ATTEMPT_ENDED, type ChannelKindSender } from "./kind.js";

/**
 * An email through the SMTP pool. It carries the live link and the freshest image, so only the
 * attempt's end makes it stale. At most once: a person must not get the same message twice.
 * Email is for a human who must act: the first QR of an attempt (the live link does the rest),
 * the endings that need someone, an instance's alert and its end (one each per episode); a
 * digest also lists the instances linked again.
 */
export const emailKind: ChannelKindSender = {
  // Emails wait in the mailer's pool for one of its SMTP connections.
  inFlight: 64,
  repeatable: false,
  // An email that does not go says more about our SMTP relay than about the address.
  disabledForFailing: false,
  digestFleetWide: true,
  wants({ type, firstOfAttempt, final, digest }) {
    if (type === "qr.updated") return firstOfAttempt === true;
    // A digest also says which instances were linked again: alone, that would be an email nobody needs.
    if (digest && (type === "session.authorized" || type === "session.already_logged")) return true;
    if (type === "session.timed_out" || type === "session.failed") return final !== false;
    return type === "session.wrong_number" || type === "instance.alert" || type === "instance.recovered";
  },
  fresh({ open, announced, latest }) {
    return open ? { ok: true, qr: latest ?? announced } : ATTEMPT_ENDED;
  },
  send(deps, channel, _deliveryId, view, qr, now) {
    const expiresAt = new Date(now.getTime() + deps.liveLinkTtlS * 1000);
    if (isFleetView(view)) return deps.mailer.send({ fleet: withLiveLinks(deps, view, expiresAt), liveExpiresAt: expiresAt, to: channel.address });
    const liveUrl = liveLinkFor(deps, view, expiresAt);
    return deps.mailer.send({ view, qr, liveUrl, liveExpiresAt: liveUrl ? expiresAt : null, to: channel.address });
  },
};
