/**
 * Cold start, as Vercel pays it: each function of `vercel build`'s output imported in a fresh
 * Node process (best of five, interleaved), its import time and resident memory beside the floor — a module
 * of the same bundle importing only @upstash/redis, zod and nanoid, which any function on Upstash
 * needs. And each function's size on disk. Configured for Upstash REST, as on Vercel.
 *
 *   npx vercel@60 build --yes && npx tsx bench/cold-start.ts
 *
 * COLD_START_BEFORE=<another checkout>/.vercel/output/functions measures that build too, in the
 * same rounds (each beside its own floor): before and after a change, on one noisy machine.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { childEnv } from "../tests/support/processes.js";
import { printTable, saveResult, SMOKE } from "./support.js";

const root = new URL("../", import.meta.url).pathname;
const OUTPUT = join(root, ".vercel/output/functions");
/** Rounds: each imports the floor and every function once, so a noisy moment falls on all alike; each keeps its best. */
const ROUNDS = SMOKE ? 1 : 5;
/** The goals: every signaling function within these of the floor. */
export const GOALS = { importTime: 2, rss: 1.4 };

export interface BuiltFunction {
  /** e.g. "api/offer" */
  name: string;
  dir: string;
  handler: string;
  config: Record<string, unknown>;
}

/** Every function `vercel build` wrote (to `output`), with its .vc-config.json. */
export function builtFunctions(output = OUTPUT): BuiltFunction[] {
  const found: BuiltFunction[] = [];
  const walk = (dir: string) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (!entry.isDirectory()) continue;
      if (entry.name.endsWith(".func")) {
        const config = JSON.parse(readFileSync(join(path, ".vc-config.json"), "utf8"));
        found.push({ name: relative(output, path).replace(/\.func$/, "").replace(/\/index$/, ""), dir: path, handler: config.handler, config });
      } else walk(path);
    }
  };
  walk(output);
  return found.sort((a, b) => a.name.localeCompare(b.name));
}

/** The environment of a deployment on Upstash REST (nothing is reached: importing opens no connection). */
export const REST_ENV = { VERCEL: "1", UPSTASH_REDIS_REST_URL: "http://127.0.0.1:9", UPSTASH_REDIS_REST_TOKEN: "cold-start", LOG_LEVEL: "off" };

/** Imports `file` in a fresh process: how long the import took (ms) and the process's RSS after it (MiB). */
function importOnce(file: string): { ms: number; rssMiB: number } {
  const code = `const t = performance.now(); await import(${JSON.stringify(file)}); const ms = performance.now() - t; console.log(JSON.stringify({ ms, rssMiB: process.memoryUsage().rss / 2 ** 20 }));`;
  const out = execFileSync(process.execPath, ["--input-type=module", "-e", code], { env: childEnv(REST_ENV), encoding: "utf8" });
  return JSON.parse(out.trim().split("\n").at(-1)!);
}

/** Each file's best import time and RSS over ROUNDS rounds of importing every file once. */
function bestOf(files: string[]): { ms: number; rssMiB: number }[] {
  const best = files.map(() => ({ ms: Infinity, rssMiB: Infinity }));
  for (let round = 0; round < ROUNDS; round++) {
    files.forEach((file, i) => {
      const { ms, rssMiB } = importOnce(file);
      best[i] = { ms: Math.min(best[i].ms, ms), rssMiB: Math.min(best[i].rssMiB, rssMiB) };
    });
  }
  return best;
}

function sizeMiB(dir: string): number {
  return Number(execFileSync("du", ["-sk", dir], { encoding: "utf8" }).split("\t")[0]) / 1024;
}

interface Measured {
  floor: { ms: number; rssMiB: number };
  rows: { name: string; ai: boolean; sizeMiB: number; ms: number; rssMiB: number }[];
  met: boolean;
}

/** The floor and each function of one build, as files to import (the floor written beside api/offer: the same bundle). */
function filesOf(output: string) {
  const functions = builtFunctions(output);
  const floor = join(functions.find((f) => f.name === "api/offer")!.dir, "cold-start-floor.mjs");
  return { functions, floor, files: [floor, ...functions.map((f) => join(f.dir, f.handler))] };
}

function report(label: string, functions: BuiltFunction[], [floor, ...each]: { ms: number; rssMiB: number }[]): Measured {
  const rows = functions.map((f, i) => ({ name: f.name, ai: f.name.startsWith("api/session") || f.name === "api/openapi.json", sizeMiB: sizeMiB(f.dir), ...each[i] }));
  const r1 = (x: number) => Math.round(x * 10) / 10;
  printTable(
    `Cold start in \`vercel build\`'s output${label}: import time and RSS of a fresh process, best of ${ROUNDS} (goal for signaling functions: ≤ ${GOALS.importTime}× the floor's time, ≤ ${GOALS.rss}× its RSS)`,
    ["function", "import (ms)", "÷ floor", "RSS (MiB)", "÷ floor", "size (MiB)"],
    [
      ["floor: @upstash/redis + zod + nanoid", r1(floor.ms), "1", r1(floor.rssMiB), "1", "–"],
      ...rows.map((r) => [`${r.name}${r.ai ? " (AI / all routes)" : ""}`, r1(r.ms), `${r1(r.ms / floor.ms)}×`, r1(r.rssMiB), `${r1(r.rssMiB / floor.rssMiB)}×`, r1(r.sizeMiB)]),
    ],
  );
  const met = rows.filter((r) => !r.ai).every((r) => r.ms <= GOALS.importTime * floor.ms && r.rssMiB <= GOALS.rss * floor.rssMiB);
  console.log(`\nEvery signaling function within the goal${label}: ${met ? "yes" : "no"}`);
  return { floor, rows, met };
}

export async function coldStartBenchmark() {
  if (!existsSync(OUTPUT)) {
    console.log("\n### Cold start: no `vercel build` output (run `npx vercel@60 build --yes` first); skipped");
    return null;
  }
  const builds = [OUTPUT, ...(process.env.COLD_START_BEFORE ? [process.env.COLD_START_BEFORE] : [])].map(filesOf);
  for (const b of builds) writeFileSync(b.floor, 'import "@upstash/redis";\nimport "zod";\nimport "nanoid";\n');
  let measured: { ms: number; rssMiB: number }[];
  try {
    measured = bestOf(builds.flatMap((b) => b.files));
  } finally {
    for (const b of builds) rmSync(b.floor);
  }
  const [after, before] = builds.map((b, i) => {
    const offset = builds.slice(0, i).reduce((n, o) => n + o.files.length, 0);
    return report(builds.length > 1 ? (i ? " (before)" : " (after)") : "", b.functions, measured.slice(offset, offset + b.files.length));
  });
  await saveResult("cold-start", { rounds: ROUNDS, ...after, goals: GOALS, ...(before ? { before } : {}) });
  return after;
}

if (import.meta.url === `file://${process.argv[1]}`) await coldStartBenchmark();
