/**
 * A synchronous, deterministic test harness for the Raft core used by the
 * etcd-style scenario files: nodes with `MemoryLogStore`s, a mailbox of
 * messages delivered only on command, partitions, crashes and restarts.
 *
 * @module
 */

import { RaftNode } from "../../lib/raft/raft_node.ts";
import type { ConfChange, Message } from "../../lib/raft/types.ts";
import { decodeConfChange } from "../../lib/raft/conf_change.ts";
import { Prng } from "../../lib/sim/prng.ts";
import { MemoryLogStore } from "../../lib/storage/memory_log_store.ts";
import { type Entry, EntryType } from "../../lib/storage/types.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const ELECTION_TICKS = 10;

interface HarnessNode {
  id: number;
  store: MemoryLogStore;
  node: RaftNode | undefined;
  founding: number[];
  applied: string[];
  /** Set while the node rebuilds a lost log (persisted, like the shell's marker file). */
  recoveringTerm: number | undefined;
}

/** Drives a set of Raft nodes by text commands and describes what happened. */
export class Harness {
  readonly #nodes = new Map<number, HarnessNode>();
  #mailbox: Message[] = [];
  readonly #blocked = new Set<string>();

  /** Runs one command line and returns its output lines. */
  run(line: string): string[] {
    const [command, ...args] = line.trim().split(/\s+/);
    const out: string[] = [];
    const id = Number(args[0]);
    switch (command) {
      case "add-nodes":
        this.#addNodes(Number(args[0]), out);
        break;
      case "campaign":
        this.#live(id).campaign();
        this.#processAll(out);
        break;
      case "tick-election":
        for (let i = 0; i < ELECTION_TICKS * 2; i++) this.#live(id).tick();
        this.#processAll(out);
        break;
      case "tick":
        for (let i = 0; i < Number(args[1]); i++) this.#live(id).tick();
        this.#processAll(out);
        break;
      case "tick-heartbeat":
        this.#live(id).tick();
        this.#processAll(out);
        break;
      case "deliver-msgs":
        // `deliver-msgs drop=2,3` loses this round's messages to nodes 2 and 3.
        this.#deliverRound(out, dropSet(args));
        break;
      case "stabilize":
        this.#stabilize(out);
        break;
      case "partition":
        this.#partition(args.join(" "), out);
        break;
      case "heal":
        this.#blocked.clear();
        out.push("healed");
        break;
      default:
        this.#runOperation(command, args, out);
    }
    return out.length > 0 ? out : ["ok"];
  }

  #runOperation(command: string, args: string[], out: string[]): void {
    const id = Number(args[0]);
    switch (command) {
      case "propose":
        this.#attempt(
          out,
          () => `n${id} proposed ${args[1]} at ${this.#live(id).propose(encoder.encode(args[1]))}`,
        );
        break;
      case "read-index":
        this.#attempt(out, () => {
          this.#live(id).readIndex(encoder.encode(args[1]));
          return `n${id} read-index ${args[1]} requested`;
        });
        break;
      case "add-learner":
      case "add-voter":
      case "promote":
      case "remove":
        this.#confChange(command, Number(args[1]), id, out);
        break;
      case "transfer":
        this.#attempt(out, () => {
          this.#live(id).transferLeadership(Number(args[1]));
          return `n${id} transferring leadership to n${args[1]}`;
        });
        break;
      case "crash":
        this.#crash(id, out);
        return;
      case "restart":
        this.#start(this.#nodes.get(id)!);
        out.push(`n${id} restarted: ${this.#statusLine(this.#nodes.get(id)!)}`);
        break;
      case "wipe":
        this.#wipe(id, out);
        break;
      case "truncate":
        this.#truncate(id, Number(args[1]), out);
        break;
      case "reset-progress":
        this.#live(id).resetProgress(Number(args[1]));
        out.push(`n${id} forgot the progress of n${args[1]}`);
        break;
      case "compact":
        this.#compact(id, args[1] === undefined ? undefined : Number(args[1]), out);
        return;
      case "status":
        for (const node of this.#nodes.values()) out.push(this.#statusLine(node));
        return;
      case "log":
        this.#log(id, out);
        return;
      default:
        throw new Error(`Unknown scenario command: ${command}`);
    }
    this.#processAll(out);
  }

  #addNodes(count: number, out: string[]): void {
    const start = this.#nodes.size + 1;
    const founding = this.#nodes.size === 0 ? Array.from({ length: count }, (_, i) => i + 1) : [];
    for (let id = start; id < start + count; id++) {
      const node: HarnessNode = {
        id,
        store: new MemoryLogStore(),
        node: undefined,
        founding,
        applied: [],
        recoveringTerm: undefined,
      };
      this.#nodes.set(id, node);
      this.#start(node);
      out.push(
        `n${id} added${
          founding.length > 0 ? ` (voters ${founding.join(",")})` : " (no conf: joins later)"
        }`,
      );
    }
    this.#processAll([]);
  }

  #start(node: HarnessNode): void {
    node.applied = [];
    node.node = new RaftNode({
      id: node.id,
      store: node.store,
      rng: new Prng(node.id),
      voters: node.founding,
      electionTicks: ELECTION_TICKS,
      heartbeatTicks: 1,
      appendBytesMax: 64,
      recoveringTerm: node.recoveringTerm,
    });
    const snapshot = node.store.snapshot();
    if (snapshot) node.applied = JSON.parse(decoder.decode(snapshot.data));
  }

  #crash(id: number, out: string[]): void {
    const node = this.#nodes.get(id)!;
    node.node = undefined;
    node.store.crash();
    this.#mailbox = this.#mailbox.filter((message) => message.to !== id && message.from !== id);
    out.push(`n${id} crashed`);
  }

  /**
   * `wipe ID`: the node's log is found damaged and rebuilt empty, as a peer
   * quarantines a replica: only the hard state's term and vote survive, and
   * the node restarts recovering after that term.
   */
  #wipe(id: number, out: string[]): void {
    const node = this.#nodes.get(id)!;
    if (node.node) this.#crash(id, []);
    const { term, vote } = node.store.hardState();
    node.store = new MemoryLogStore();
    node.store.setHardState({ term, vote, commit: 0 });
    node.store.syncNow();
    node.founding = [];
    node.recoveringTerm = term;
    this.#start(node);
    out.push(`n${id} rebuilt empty, recovering after term ${term}: ${this.#statusLine(node)}`);
  }

  /**
   * `truncate ID INDEX`: the node restarts with its log cut after INDEX (a
   * torn tail that took acknowledged entries with it, unnoticed).
   */
  #truncate(id: number, index: number, out: string[]): void {
    const node = this.#nodes.get(id)!;
    if (node.node) this.#crash(id, []);
    const old = node.store;
    const hardState = old.hardState();
    node.store = new MemoryLogStore();
    node.store.append(old.entries(old.firstIndex(), index + 1));
    node.store.setHardState({ ...hardState, commit: Math.min(hardState.commit, index) });
    node.store.syncNow();
    this.#start(node);
    out.push(`n${id} restarted with its log cut after ${index}: ${this.#statusLine(node)}`);
  }

  /** `compact ID [INDEX]`: snapshots at the applied index, which INDEX (when given) must name. */
  #compact(id: number, index: number | undefined, out: string[]): void {
    const node = this.#nodes.get(id)!;
    const applied = node.node!.status().applied;
    if (index !== undefined && index !== applied) {
      out.push(`error: n${id} can only compact at its applied index ${applied}`);
      return;
    }
    const snapshot = node.node!.createSnapshot(encoder.encode(JSON.stringify(node.applied)));
    void node.store.compact(snapshot);
    out.push(`n${id} compacted through ${snapshot.index} (term ${snapshot.term})`);
  }

  #confChange(command: string, target: number, leader: number, out: string[]): void {
    const type = ({
      "add-learner": "addLearner",
      "add-voter": "addVoter",
      promote: "promote",
      remove: "remove",
    } as const)[
      command as "add-learner"
    ];
    if (type === "addLearner" && !this.#nodes.has(target)) this.#addNodes(1, out);
    const change = { type, node: target } as ConfChange;
    this.#attempt(
      out,
      () =>
        `n${leader} proposed ${command} n${target} at ${
          this.#live(leader).proposeConfChange(change)
        }`,
    );
  }

  #attempt(out: string[], operation: () => string): void {
    try {
      out.push(operation());
    } catch (error) {
      out.push(`error: ${(error as Error).name}: ${(error as Error).message}`);
    }
  }

  #partition(spec: string, out: string[]): void {
    const groups = spec.split("|").map((group) => group.trim().split(/\s+/).map(Number));
    for (const left of groups) {
      for (const right of groups) {
        if (left === right) continue;
        for (const a of left) for (const b of right) this.#blocked.add(`${a}>${b}`);
      }
    }
    out.push(`partitioned ${groups.map((group) => group.join(" ")).join(" | ")}`);
  }

  #live(id: number): RaftNode {
    const node = this.#nodes.get(id)?.node;
    if (!node) throw new Error(`Node ${id} is not running`);
    return node;
  }

  /** Handles every pending Ready in the documented order (synchronously). */
  #processAll(out: string[]): void {
    let progressed = true;
    while (progressed) {
      progressed = false;
      for (const node of this.#nodes.values()) {
        while (node.node?.hasReady()) {
          progressed = true;
          this.#handleReady(node, out);
        }
      }
    }
  }

  #handleReady(node: HarnessNode, out: string[]): void {
    const raft = node.node!;
    const rd = raft.ready();
    if (rd.softState) {
      out.push(
        `n${node.id} is ${rd.softState.role} (term ${raft.term}, leader ${rd.softState.leader})`,
      );
    }
    if (rd.snapshot) {
      void node.store.applySnapshot(rd.snapshot);
      node.applied = JSON.parse(decoder.decode(rd.snapshot.data));
      out.push(`n${node.id} installed snapshot at ${rd.snapshot.index} (term ${rd.snapshot.term})`);
    }
    if (rd.entries.length > 0) node.store.append(rd.entries);
    if (rd.hardState) node.store.setHardState(rd.hardState);
    if (rd.mustSync) node.store.syncNow();
    this.#mailbox.push(...rd.messages);
    for (const entry of rd.committedEntries) this.#apply(node, entry, out);
    for (const read of rd.readStates) {
      out.push(`n${node.id} read ${decoder.decode(read.context)} ready at index ${read.index}`);
    }
    for (const context of rd.droppedReads) {
      out.push(`n${node.id} read ${decoder.decode(context)} dropped`);
    }
    if (rd.recovered) {
      node.recoveringTerm = undefined;
      out.push(`n${node.id} recovered (term ${raft.term})`);
    }
    raft.advance();
  }

  #apply(node: HarnessNode, entry: Entry, out: string[]): void {
    if (entry.type === EntryType.ConfChange) {
      const change = decodeConfChange(entry.data);
      if (change.type !== "bootstrap") {
        out.push(`n${node.id} applied ${entry.index}: ${change.type} n${change.node}`);
      }
    } else if (entry.data.byteLength > 0) {
      node.applied.push(decoder.decode(entry.data));
      out.push(`n${node.id} applied ${entry.index}: ${decoder.decode(entry.data)}`);
    }
  }

  #deliverRound(out: string[], drop = new Set<number>()): number {
    const round = this.#mailbox;
    this.#mailbox = [];
    let delivered = 0;
    for (const message of round) {
      const target = this.#nodes.get(message.to)?.node;
      if (!target || drop.has(message.to) || this.#blocked.has(`${message.from}>${message.to}`)) {
        out.push(`dropped ${describeMessage(message)}`);
        continue;
      }
      out.push(describeMessage(message));
      target.step(message);
      delivered++;
    }
    this.#processAll(out);
    return round.length;
  }

  #stabilize(out: string[]): void {
    for (let round = 0; round < 100 && this.#mailbox.length > 0; round++) this.#deliverRound(out);
  }

  #statusLine(node: HarnessNode): string {
    if (!node.node) return `n${node.id}: down`;
    const status = node.node.status();
    const conf = `voters=${status.conf.voters.join(",")}${
      status.conf.learners.length > 0 ? ` learners=${status.conf.learners.join(",")}` : ""
    }`;
    const progress = Object.entries(status.progress)
      .map(([peer, tracked]) => `${peer}:${tracked.state}/match=${tracked.match}`)
      .join(" ");
    return `n${node.id}: ${status.role} term=${status.term} leader=${status.leader} commit=${status.commit} applied=${status.applied} last=${status.lastIndex} ${conf}${
      progress ? ` progress[${progress}]` : ""
    }${status.recovering ? " recovering" : ""}`;
  }

  #log(id: number, out: string[]): void {
    const node = this.#live(id);
    const entries = node.entries(node.firstIndex(), node.status().lastIndex + 1);
    out.push(
      `n${id} log from ${node.firstIndex()}: ${entries.map(describeEntry).join(" ") || "(empty)"}`,
    );
  }
}

function dropSet(args: string[]): Set<number> {
  const spec = args.find((arg) => arg.startsWith("drop="));
  return new Set(spec ? spec.slice("drop=".length).split(",").map(Number) : []);
}

function describeEntry(entry: Entry): string {
  if (entry.type === EntryType.ConfChange) return `${entry.index}/${entry.term}:conf`;
  return `${entry.index}/${entry.term}:${
    entry.data.byteLength === 0 ? "-" : decoder.decode(entry.data)
  }`;
}

function describeMessage(message: Message): string {
  const parts = [`${message.from}->${message.to} ${message.type} term=${message.term}`];
  if (message.type === "app") {
    parts.push(`prev=${message.index}/${message.logTerm} commit=${message.commit}`);
    if (message.commitNotice) parts.push("notice");
    if (message.entries.length > 0) {
      parts.push(`entries=[${message.entries.map(describeEntry).join(" ")}]`);
    }
  } else if (message.type === "appResp") {
    parts.push(`index=${message.index}`);
    if (message.reject) parts.push(`reject hint=${message.rejectHint}/${message.logTerm}`);
  } else if (message.type === "vote" || message.type === "preVote") {
    parts.push(`last=${message.index}/${message.logTerm}${message.transfer ? " transfer" : ""}`);
  } else if (message.type.endsWith("Resp") && message.reject) {
    parts.push("reject");
  } else if (message.type === "heartbeat") {
    parts.push(`commit=${message.commit}`);
  } else if (message.type === "snap") {
    parts.push(`snapshot=${message.snapshot!.index}/${message.snapshot!.term}`);
  }
  if (message.context) parts.push(`ctx=${decoder.decode(message.context)}`);
  return parts.join(" ");
}
