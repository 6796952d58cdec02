/** What room and peer IDs look like: shared by the server and the pages (no Node APIs here). */

/** No 0/o, 1/l/i: easy to read aloud and type from a screen. */
export const ID_ALPHABET = "23456789abcdefghjkmnpqrstuvwxyz";
export const ID_LENGTH = 10;
export const ID_PATTERN = new RegExp(`^[${ID_ALPHABET}]{${ID_LENGTH}}$`);

/** A room ID as people type or paste it: any case, with spaces or dashes between groups. */
export const normalizeRoomId = (typed: string) => typed.toLowerCase().replace(/[\s-]+/g, "");
