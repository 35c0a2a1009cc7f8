import { checkClusterShard, shardTestName } from "./_cluster_seeds.ts";

Deno.test(shardTestName(3), () => checkClusterShard(3));
