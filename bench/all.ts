/** npm run bench: the benchmarks, one after another, on the memory store and on Redis (delivery also beside the PeerJS server). */
import { abuseBenchmark } from "./abuse.js";
import { capacityBenchmark } from "./capacity.js";
import { coldStartBenchmark } from "./cold-start.js";
import { costsBenchmark } from "./costs.js";
import { deliveryBenchmark } from "./delivery.js";
import { firstFrameBenchmark } from "./first-frame.js";
import { latencyBenchmark } from "./latency.js";
import { redisStoreBenchmark } from "./redis-store.js";
import { scaleOutBenchmark } from "./scale-out.js";
import { machine } from "./support.js";

const m = machine();
console.log(`signalbox benchmarks — ${m.date}; ${m.cores} cores (${m.cpu}), ${m.memoryGiB} GiB, Node ${m.node}${m.smoke ? "; SMOKE sizes" : ""}`);
console.log("Results as JSON in bench-results/.");
await coldStartBenchmark();
await deliveryBenchmark();
await latencyBenchmark();
await costsBenchmark();
await redisStoreBenchmark();
await capacityBenchmark();
await firstFrameBenchmark();
await scaleOutBenchmark();
await abuseBenchmark();
