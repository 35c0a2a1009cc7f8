// The cluster's timeline, derived by comparing successive polls of
// /api/cluster and the topics: peers going down and coming back, the
// controller and topic leaders moving, replicas being re-created elsewhere,
// replicas falling behind and catching up, topics created and deleted, and
// the console losing and regaining its own peer.

const eventsMax = 500;
const historyMax = 1200;
const storageKey = "pubsub.timeline";

const stateWords = {
  alive: "is up",
  suspect: "is suspected down (missed heartbeats)",
  dead: "is down",
  left: "left the cluster",
};

export class Timeline {
  /** Events, oldest first: { t, kind, text, major, level }. */
  events = [];
  /** Peer states per poll, oldest first: { t, states: { id: state }, controller }. */
  history = [];
  #previous;
  #listeners = new Set();

  constructor() {
    try {
      const saved = JSON.parse(sessionStorage.getItem(storageKey) ?? "null");
      if (saved && Array.isArray(saved.events) && Array.isArray(saved.history)) {
        this.events = saved.events.slice(-eventsMax);
        this.history = saved.history.slice(-historyMax);
      }
    } catch { /* a fresh timeline */ }
  }

  onChange(listener) {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Marks a stretch without data (the console's peer does not answer). */
  gap(t = Date.now()) {
    const last = this.history.at(-1);
    if (last === undefined || last.gap) return;
    const states = Object.fromEntries(Object.keys(last.states).map((id) => [id, "unknown"]));
    this.history.push({ t, states, controller: null, gap: true });
    this.#save();
  }

  /** Records a console event (connection lost or back). */
  note(kind, text, level = "info", major = false, t = Date.now()) {
    this.#add([{ t, kind, text, level, major }]);
  }

  /**
   * Compares `snapshot` ({ t, node, cluster, topics: Map name -> description })
   * with the previous one and records what changed.
   */
  observe(snapshot) {
    const t = snapshot.t;
    const states = Object.fromEntries(snapshot.cluster.nodes.map((node) => [node.id, node.state]));
    this.history.push({ t, states, controller: snapshot.cluster.meta_leader });
    if (this.history.length > historyMax) this.history.splice(0, this.history.length - historyMax);
    const previous = this.#previous;
    // A topic that could not be described this time keeps its last known
    // state, so the change across the gap (a failover usually makes one) is
    // still seen when the topic answers again.
    this.#previous = previous === undefined ? snapshot : withLastKnownTopics(snapshot, previous);
    if (previous === undefined) {
      const alive = snapshot.cluster.nodes.filter((node) => node.state === "alive").length;
      this.#add([{
        t,
        kind: "console",
        level: "info",
        major: false,
        text: `Watching through peer ${
          snapshot.node ?? "?"
        }: ${alive} of ${snapshot.cluster.nodes.length} peers up, controller ${
          snapshot.cluster.meta_leader ?? "none"
        }, ${snapshot.topics.size} topics`,
      }]);
      this.#save();
      return;
    }
    this.#add([...peerEvents(previous, snapshot, t), ...topicEvents(previous, snapshot, t)]);
    this.#save();
  }

  #add(events) {
    if (events.length === 0) return;
    this.events.push(...events);
    if (this.events.length > eventsMax) this.events.splice(0, this.events.length - eventsMax);
    for (const listener of this.#listeners) listener();
  }

  #save() {
    try {
      sessionStorage.setItem(
        storageKey,
        JSON.stringify({ events: this.events, history: this.history }),
      );
    } catch { /* storage full or unavailable: the timeline lives in memory */ }
  }
}

function peerEvents(previous, next, t) {
  const events = [];
  const before = new Map(previous.cluster.nodes.map((node) => [node.id, node]));
  for (const node of next.cluster.nodes) {
    const old = before.get(node.id);
    if (old === undefined) {
      events.push({
        t,
        kind: "peer",
        level: "info",
        major: true,
        text: `Peer ${node.id} (${node.address}) joined the cluster`,
      });
    } else if (old.state !== node.state) {
      const level = node.state === "alive" ? "good" : node.state === "suspect" ? "warn" : "bad";
      events.push({
        t,
        kind: "peer",
        level,
        major: true,
        text: `Peer ${node.id} ${stateWords[node.state] ?? node.state}`,
      });
    }
  }
  const oldController = previous.cluster.meta_leader;
  const newController = next.cluster.meta_leader;
  if (oldController !== newController) {
    events.push({
      t,
      kind: "controller",
      level: newController === null ? "bad" : "warn",
      major: true,
      text: newController === null
        ? `The controller (peer ${oldController}) is gone; no controller yet`
        : oldController === null
        ? `Peer ${newController} is the controller`
        : `The controller moved from peer ${oldController} to peer ${newController}`,
    });
  }
  return events;
}

/** `snapshot`, with the topics it could not describe as they were in `previous`. */
function withLastKnownTopics(snapshot, previous) {
  const topics = new Map();
  for (const [name, topic] of snapshot.topics) {
    const known = previous.topics.get(name);
    topics.set(name, topic.error !== undefined && known !== undefined ? known : topic);
  }
  return { ...snapshot, topics };
}

function topicEvents(previous, next, t) {
  const events = [];
  for (const [name, topic] of next.topics) {
    const old = previous.topics.get(name);
    if (old === undefined) {
      if (previous.topics.size > 0 || previous.cluster.topics === 0) {
        events.push({
          t,
          kind: "topic",
          level: "info",
          major: false,
          text: `Topic ${name} created`,
        });
      }
      continue;
    }
    if (topic.error !== undefined || old.error !== undefined) continue;
    if (old.leader !== topic.leader) {
      events.push({
        t,
        kind: "leader",
        level: topic.leader === null ? "bad" : "warn",
        major: true,
        text: topic.leader === null
          ? `${name}: no leader (was peer ${old.leader})`
          : old.leader === null
          ? `${name}: peer ${topic.leader} is the leader`
          : `${name}: leader moved from peer ${old.leader} to peer ${topic.leader}`,
      });
    }
    const oldReplicas = old.replicas.join(",");
    const newReplicas = topic.replicas.join(",");
    if (oldReplicas !== newReplicas) {
      const added = topic.replicas.filter((id) => !old.replicas.includes(id));
      const removed = old.replicas.filter((id) => !topic.replicas.includes(id));
      const parts = [];
      if (added.length > 0) parts.push(`new replica on peer ${added.join(", ")}`);
      if (removed.length > 0) parts.push(`replica on peer ${removed.join(", ")} dropped`);
      events.push({
        t,
        kind: "replicas",
        level: "warn",
        major: true,
        text: `${name}: re-replication: ${parts.join("; ")} (replicas ${newReplicas})`,
      });
    }
    const caughtUp = topic.in_sync.filter((id) => !old.in_sync.includes(id));
    const fellBehind = old.in_sync.filter((id) =>
      !topic.in_sync.includes(id) && topic.replicas.includes(id)
    );
    if (caughtUp.length > 0) {
      events.push({
        t,
        kind: "sync",
        level: "good",
        major: false,
        text: `${name}: peer ${
          caughtUp.join(", ")
        } in sync (${topic.in_sync.length}/${topic.replicas.length})`,
      });
    }
    if (fellBehind.length > 0) {
      events.push({
        t,
        kind: "sync",
        level: "warn",
        major: false,
        text: `${name}: peer ${
          fellBehind.join(", ")
        } out of sync (${topic.in_sync.length}/${topic.replicas.length})`,
      });
    }
  }
  for (const name of previous.topics.keys()) {
    if (!next.topics.has(name) && next.cluster.topics < previous.cluster.topics) {
      events.push({ t, kind: "topic", level: "info", major: false, text: `Topic ${name} deleted` });
    }
  }
  return events;
}
