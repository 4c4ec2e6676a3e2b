import { z } from "zod";

/** Ids are UUIDs: checked before a lookup, so a malformed one reads as "not found", never as a database error. */
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export const isUuid = (value: string): boolean => UUID.test(value);

/** The schema of an id in input: the same rule as `isUuid`, and `message` when it is not one. */
export const uuidSchema = (message: string) => z.string().regex(UUID, message);
