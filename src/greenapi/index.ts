export * from "./types.js";
export * from "./errors.js";
export { parseApiUrl, parseIdInstance, parseAddress, methodUrl, qrSocketUrl, InvalidAddressError } from "./urls.js";
export { parseFrame, decodePng, phoneOf, MAX_FRAME_BYTES, type QrFrame } from "./frames.js";
export { createGreenApiClient, type GreenApiClient, type GreenApiClientOptions, type RestQr } from "./rest.js";
export { runQrSession, type QrSessionOptions, type QrSocket, type QrSocketListener } from "./session.js";
export { openQrSocket, connectorFor, type QrSocketOptions } from "./socket.js";
export { runRestQrSession, type RestQrSessionOptions } from "./rest-session.js";
