/**
 * The store's transport over TCP (node-redis), to a Redis or Valkey server or a Redis Cluster:
 * for self-hosting, where every request would otherwise pay a REST hop. The same scripts, by
 * SHA (EVAL once a server answers NOSCRIPT). Pub/sub on one shared subscriber connection per
 * process; on a cluster, sharded (SSUBSCRIBE / SPUBLISH, Redis 7) so a notice goes to the
 * room's shard only.
 */
import { createHash } from "node:crypto";
import { createClient, createCluster } from "redis";
import { SCRIPTS, SHARDED_SCRIPTS } from "./lua.js";
import type { LimiterRedis, RedisTransport, ScriptName, Subscription } from "./transport.js";

type Listener = (message: string) => void;

/** What the transport needs of node-redis, the same for one server and for a cluster. */
interface Connection {
  /** One command, routed by `key` on a cluster. */
  send(key: string, args: string[]): Promise<unknown>;
  subscribe(channel: string, listener: Listener): Promise<void>;
  unsubscribe(channel: string, listener: Listener): Promise<void>;
  ready: Promise<unknown>;
  /** Known to be down (it failed, and has not come back): commands fail at once rather than wait out their timeout. */
  down(): boolean;
  close(): Promise<unknown>;
}

const sha1 = (source: string) => createHash("sha1").update(source).digest("hex");

/**
 * Upstash's scripts start `#!lua flags=allow-key-locking` (ours and @upstash/ratelimit's), a flag
 * redis-server rejects: the same script without it.
 */
export function stripUpstashFlags(script: string): string {
  const match = /^#!lua([^\n]*)/.exec(script);
  if (!match) return script;
  const flags = /flags=(\S*)/.exec(match[1]);
  if (!flags) return script;
  const kept = flags[1].split(",").filter((f) => f && f !== "allow-key-locking");
  const shebang = kept.length ? `#!lua flags=${kept.join(",")}` : "#!lua";
  return shebang + script.slice(match[0].length);
}

export interface TcpOptions {
  url: string;
  cluster: boolean;
  /** A command that takes longer fails (503) rather than holding the request. */
  commandTimeoutMs: number;
}

export class TcpTransport implements RedisTransport {
  readonly kind: "tcp" | "cluster";
  readonly timeoutMs: number;
  /** node-redis fails a command whose connection broke; it never sends it again. */
  readonly retries = false;
  private readonly sources: Record<ScriptName, { source: string; sha: string }>;
  private readonly connection: Connection;
  /** The SHA1 the rate limiter knows each of its scripts by → the SHA1 of what Redis runs (flags stripped). */
  private readonly limiterShas = new Map<string, string>();
  /** Live subscriptions, told when a connection under them breaks (their notices may be lost). */
  private readonly subscriptions = new Set<(error: Error) => void>();

  constructor(private readonly options: TcpOptions) {
    this.kind = options.cluster ? "cluster" : "tcp";
    this.timeoutMs = options.commandTimeoutMs;
    // The scripts without Upstash's allow-key-locking flag, which redis-server rejects.
    const scripts = options.cluster ? SHARDED_SCRIPTS : SCRIPTS;
    this.sources = Object.fromEntries(Object.entries(scripts).map(([name, flagged]) => {
      const source = stripUpstashFlags(flagged);
      return [name, { source, sha: sha1(source) }];
    })) as typeof this.sources;
    const lost = (error: Error) => this.subscriptions.forEach((tell) => tell(error));
    this.connection = options.cluster ? clusterConnection(options, lost) : serverConnection(options, lost);
    this.connection.ready.catch(() => {}); // each command reports its own failure
  }

  get limiter(): LimiterRedis {
    return {
      // An unknown SHA answers NOSCRIPT, and the limiter sends the script itself once.
      evalsha: (sha, keys, args) => this.send(keys[0], ["EVALSHA", this.limiterShas.get(sha) ?? sha, String(keys.length), ...keys, ...args.map(String)]),
      eval: (source, keys, args) => {
        const runnable = stripUpstashFlags(source);
        this.limiterShas.set(sha1(source), sha1(runnable));
        return this.send(keys[0], ["EVAL", runnable, String(keys.length), ...keys, ...args.map(String)]);
      },
    };
  }

  async script(name: ScriptName, keys: string[], args: string[]) {
    const { source, sha } = this.sources[name];
    try {
      return await this.send(keys[0], ["EVALSHA", sha, String(keys.length), ...keys, ...args]);
    } catch (error) {
      if (!String(error).includes("NOSCRIPT")) throw error;
      return this.send(keys[0], ["EVAL", source, String(keys.length), ...keys, ...args]);
    }
  }

  subscribe(channel: string, onMessage: (payload: string) => void, onLost: (error: Error) => void): Subscription {
    const listener: Listener = (message) => onMessage(message);
    let open = true;
    const tell = (error: Error) => open && onLost(error);
    this.subscriptions.add(tell);
    const ready = this.connection.down()
      ? Promise.reject(new Error("Redis is not connected (reconnecting)"))
      : this.connection.ready.then(() => this.connection.subscribe(channel, listener));
    return {
      ready,
      close: () => {
        open = false;
        this.subscriptions.delete(tell);
        ready.then(() => this.connection.unsubscribe(channel, listener)).catch(() => {});
      },
    };
  }

  async ping() {
    await this.send("ping", ["PING"]);
  }

  async close() {
    this.subscriptions.clear();
    await this.connection.close().catch(() => {});
  }

  /** One command within the command timeout. */
  private async send(key: string, args: string[]): Promise<unknown> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`Redis did not answer within ${this.options.commandTimeoutMs} ms`)), this.options.commandTimeoutMs);
    });
    try {
      if (this.connection.down()) throw new Error("Redis is not connected (reconnecting)");
      return await Promise.race([this.connection.ready.then(() => this.connection.send(key, args)), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}

/**
 * Commands fail at once while disconnected (503) rather than queue behind a dead server, which
 * is retried at most `retryMs` apart.
 */
const clientOptions = (options: TcpOptions, retryMs = 2000) => ({
  disableOfflineQueue: true,
  socket: { connectTimeout: options.commandTimeoutMs, reconnectStrategy: (attempt: number) => Math.min(50 * 2 ** attempt, retryMs) },
});

/** One server: a connection for commands, and one shared by every subscription. */
function serverConnection(options: TcpOptions, lost: (error: Error) => void): Connection {
  const client = createClient({ url: options.url, ...clientOptions(options) });
  const subscriber = client.duplicate();
  let failed = false;
  client.on("error", () => (failed = true));
  client.on("ready", () => (failed = false));
  subscriber.on("error", (error: Error) => lost(error));
  return {
    down: () => failed && !client.isReady,
    send: (_key, args) => client.sendCommand(args),
    subscribe: (channel, listener) => subscriber.subscribe(channel, listener),
    unsubscribe: (channel, listener) => subscriber.unsubscribe(channel, listener),
    ready: Promise.all([client.connect(), subscriber.connect()]),
    close: () => Promise.allSettled([client.close(), subscriber.close()]),
  };
}

/** A cluster: commands routed by key; subscriptions sharded, on the node that owns the channel's slot. */
function clusterConnection(options: TcpOptions, lost: (error: Error) => void): Connection {
  const cluster = createCluster({
    rootNodes: [{ url: options.url }],
    // A master unreachable for 500 ms: ask the cluster who holds its slots now (a replica may have
    // taken over), and again every retry after. node-redis waits 5 s by default, which would hold a
    // failover's rooms down that long.
    defaults: clientOptions(options, 500),
    useReplicas: false,
    topologyRefreshOnReconnectionAttemptStrategy: 500,
  });
  cluster.on("error", () => {});
  // A node down fails its own slots' commands (their timeout); the others go on.
  cluster.on("node-error", (error: Error) => lost(error));
  cluster.on("node-disconnect", () => lost(new Error("a cluster node disconnected")));
  /**
   * node-redis closes a master's sharded-subscription connection when its last channel goes, so
   * with few waiting reads on a master each would open (and close) a connection of its own — the
   * cluster's slow first waits. One quiet channel per master, never published to, keeps each open.
   */
  const keepShardedConnections = async () => {
    const kept = new Set<string>();
    for (let n = 0; kept.size < cluster.masters.length && n < 1000; n++) {
      const channel = `sb:keep:{${n}}`;
      const slot = Number(await cluster.sendCommand(undefined, true, ["CLUSTER", "KEYSLOT", channel]));
      const { host, port } = cluster.getSlotMaster(slot);
      if (kept.has(`${host}:${port}`)) continue;
      kept.add(`${host}:${port}`);
      await cluster.sSubscribe(channel, () => {});
    }
  };
  // Best effort: without it waits still work, only slower.
  const ready = cluster.connect().then(() => void keepShardedConnections().catch(() => {}));
  return {
    down: () => false,
    send: (key, args) => cluster.sendCommand(key, false, args),
    subscribe: (channel, listener) => cluster.sSubscribe(channel, listener),
    unsubscribe: (channel, listener) => cluster.sUnsubscribe(channel, listener),
    ready,
    close: () => cluster.close(),
  };
}
