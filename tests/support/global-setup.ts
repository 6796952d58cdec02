/**
 * Finds the Redis the Redis-backed suites run against (tests/support/redis-server.ts). With
 * none, the Redis suites are skipped loudly — except under CI=true, where a missing Redis
 * fails the run.
 */
import type { TestProject } from "vitest/node";
import { startCluster } from "./redis-cluster.js";
import { chosenSetups, ensureRedis } from "./redis-server.js";

declare module "vitest" {
  export interface ProvidedContext {
    redisUrl: string;
    /** A node of the 3-master Redis Cluster the cluster suites run against ("" for none). */
    clusterUrl: string;
  }
}

export default async function setup(project: TestProject) {
  const redis = await ensureRedis();
  if (!redis) {
    if (process.env.CI === "true") throw new Error("No Redis reachable and redis-server could not be started: the Redis suites must run in CI");
    console.warn("\n*** No Redis reachable and no redis-server to start: every Redis suite is SKIPPED ***\n");
  }
  project.provide("redisUrl", redis?.url ?? "");
  const wanted = chosenSetups()?.includes("redis-cluster") ?? true;
  const cluster = redis && wanted ? await startCluster() : null;
  if (redis && wanted && !cluster) {
    if (process.env.CI === "true") throw new Error("The Redis Cluster for the cluster suites could not be started");
    console.warn("\n*** No Redis Cluster could be started: every cluster suite is SKIPPED ***\n");
  }
  project.provide("clusterUrl", cluster?.url ?? "");
  return () => {
    redis?.stop();
    cluster?.stop();
  };
}
