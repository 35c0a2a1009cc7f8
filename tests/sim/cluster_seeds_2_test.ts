import { checkClusterShard, shardTestName } from "./_cluster_seeds.ts";

Deno.test(shardTestName(2), () => checkClusterShard(2));
