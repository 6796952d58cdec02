/**
 * Message ids, "<ms>-<seq>": `seq` counts a room's messages and `ms` never goes back, so in a
 * room ids only grow, and they order by (ms, seq). The one place this order is written in
 * TypeScript (the Lua keeps a sort key of its own: lib/store/lua.ts).
 */
export const messageId = {
  format: (ms: number, seq: number) => `${ms}-${seq}`,

  parse(id: string): [number, number] {
    const [ms, seq] = id.split("-").map(Number);
    return [ms, seq];
  },

  /** Negative, zero or positive as `a` comes before, is, or comes after `b`. */
  compare(a: string, b: string): number {
    const [ams, aseq] = messageId.parse(a);
    const [bms, bseq] = messageId.parse(b);
    return ams - bms || aseq - bseq;
  },

  /** Whether `id` comes after `cursor` (null: the start). */
  isAfter: (id: string, cursor: string | null) => cursor === null || messageId.compare(id, cursor) > 0,
};
