/**
 * The Raft consensus state machine (internal; the public API is `RaftNode`).
 *
 * Pure: it reads its log through `LogStore` but never writes it, and its
 * only inputs are `step(message)`, `tick()` and the leader operations. Its
 * outputs (messages, read states) are queued and drained by `RaftNode.ready()`.
 * One step function per role is swapped in by `become*`, as in etcd-io/raft.
 *
 * @module
 */

import { type ConfState, type Entry, EntryType, type LogStore } from "../storage/types.ts";
import {
  applyConfChange,
  decodeConfChange,
  encodeConfChange,
  validateConfChange,
} from "./conf_change.ts";
import { assert, NotLeaderError, ProposalDroppedError } from "./errors.ts";
import type { ResolvedRaftOptions } from "./options.ts";
import { Progress } from "./progress.ts";
import { majorityIndex, voteResult } from "./quorum.ts";
import { RaftLog } from "./raft_log.ts";
import { ReadOnly } from "./read_only.ts";
import {
  blankMessage,
  type ConfChange,
  type Message,
  type MessageType,
  type ReadState,
  type Role,
} from "./types.ts";

type StepFunction = (message: Message) => void;

/** How much entry data start-up reads at a time to scan the stored log (`#storedEntries`). */
const storedPageBytes = 4 * 1024 * 1024;

/**
 * Election timeouts a follower waits for a leader whose process is still
 * heard from before it campaigns (see `#leaderProcessActive`).
 */
export const leaderPatienceTimeouts = 5;

/** The Raft state machine of one replica. */
export class Raft {
  readonly id: number;
  readonly log: RaftLog;
  readonly #options: ResolvedRaftOptions;
  readonly #store: LogStore;
  term = 0;
  vote = 0;
  leader = 0;
  role: Role = "follower";
  conf: ConfState = { voters: [], learners: [] };
  leadTransferee = 0;
  /** Messages and read states waiting for the next Ready. */
  messages: Message[] = [];
  readStates: ReadState[] = [];
  /** Contexts of ReadIndex requests abandoned because this replica lost leadership. */
  droppedReads: Uint8Array[] = [];
  readonly progress = new Map<number, Progress>();
  /**
   * Set while this replica rebuilds a lost log (see `#finishRecovery`): the
   * highest term in which its previous incarnation may have voted or
   * acknowledged entries. Undefined for a normal replica.
   */
  recoveringTerm: number | undefined;
  /** The recovery finished since the last Ready: the shell clears its persisted flag. */
  recovered = false;
  #step: StepFunction;
  #votes = new Map<number, boolean>();
  #electionElapsed = 0;
  #heartbeatElapsed = 0;
  #randomizedElectionTimeout = 0;
  #ticks = 0;
  #pendingConfIndex = 0;
  #termStartIndex = 0;
  /** `#maybeCommit`'s matches, one per voter, sorted there in place (`length = 0` would free a plain array's store). */
  #matchesScratch = new Float64Array(8);
  /**
   * Set on the bootstrap leader (`RaftOptions.bootstrapLeader`) of a group
   * created by this very incarnation, until its bootstrap is durable.
   */
  #bootstrapLeading = false;
  readonly #reads: ReadOnly;
  /** ReadIndex requests received before the leader committed an entry of its term. */
  #readsBeforeCommit: Uint8Array[] = [];

  constructor(options: ResolvedRaftOptions) {
    this.id = options.id;
    this.#options = options;
    this.#store = options.store;
    this.#reads = new ReadOnly(options.readsPendingMax);
    this.log = new RaftLog(options.store);
    const hardState = options.store.hardState();
    this.term = hardState.term;
    this.vote = hardState.vote;
    this.conf = options.store.snapshot()?.conf ?? { voters: [], learners: [] };
    this.recoveringTerm = options.recoveringTerm;
    if (this.recoveringTerm !== undefined) {
      // A rebuilt replica must not bootstrap: it learns the conf from its leader.
      assert(options.voters.length === 0, "a recovering replica cannot bootstrap a group");
      if (this.term <= this.recoveringTerm) {
        // Rule 1 of #finishRecovery: the term after every one the lost
        // incarnation may have voted or acknowledged entries in.
        this.term = this.recoveringTerm + 1;
        this.vote = 0;
      }
    }
    if (options.store.lastIndex() === 0 && options.store.snapshot() === undefined) {
      this.#bootstrap(options.voters, options.learners, options.bootstrapLeader);
    } else if (this.recoveringTerm === undefined) {
      this.#commitSoleVoterLog();
    }
    this.#step = this.#stepFollower;
    this.becomeFollower(this.term, 0);
  }

  /**
   * At start-up, a replica that is its group's only voter commits its whole
   * stored log: when its conf (the snapshot's, or without one the bootstrap
   * entry's) is itself alone and no conf change follows in the log.
   *
   * Why: the stored commit index is a hint, often behind (a commit-only
   * hard state is not written), and a restarted leader normally commits
   * its log again with an entry of its new term. A sole voter whose disk is
   * full cannot write the vote of that campaign, so it never leads; until
   * space was freed its topic was served empty. Committing here changes
   * nothing Raft could decide otherwise: with one voter, no other log can
   * ever win an election, so every stored entry is committed by the first
   * entry of its next term anyway. A conf change anywhere after the conf
   * read here leaves the rule out (an uncommitted removal of the other
   * voters would not do: until it commits, they may still elect a leader
   * that truncates it). Groups of several voters read at most entry 1, so
   * their start-up does not scan the log.
   */
  #commitSoleVoterLog(): void {
    const last = this.log.lastIndex();
    if (this.log.committed >= last) return;
    let conf = this.conf;
    let from = this.log.applied + 1;
    if (from === 1) {
      const [bootstrap] = this.log.slice(1, 2) ?? [];
      if (bootstrap?.type !== EntryType.ConfChange) return;
      conf = applyConfChange(conf, decodeConfChange(bootstrap.data));
      from = 2;
    }
    if (conf.voters.length !== 1 || conf.voters[0] !== this.id) return;
    for (const entry of this.#storedEntries(from, last)) {
      if (entry.type === EntryType.ConfChange) return;
    }
    this.log.commitTo(last);
  }

  /** The stored entries `from..to`, read a page at a time (none when compacted). */
  *#storedEntries(from: number, to: number): Generator<Entry> {
    for (let index = from; index <= to;) {
      const page = this.log.slice(index, to + 1, storedPageBytes);
      if (page === undefined) return;
      yield* page;
      index += page.length;
    }
  }

  /**
   * A new group writes its initial conf as entry 1 (term 1) so that joiners
   * learn it from the log. With a bootstrap leader every founding replica
   * also starts having voted for it in term 1 (see `#leadBootstrap`).
   */
  #bootstrap(voters: number[], learners: number[], leader: number | undefined): void {
    if (voters.length === 0) return;
    const change: ConfChange = { type: "bootstrap", voters: [...voters], learners: [...learners] };
    this.log.append([{
      term: 1,
      index: 1,
      type: EntryType.ConfChange,
      data: encodeConfChange(change),
    }]);
    // Every founding member writes the identical entry, so it is committed by construction.
    this.log.commitTo(1);
    this.term = Math.max(this.term, 1);
    this.conf = applyConfChange(this.conf, change);
    if (leader !== undefined && this.term === 1) {
      this.vote = leader;
      this.#bootstrapLeading = leader === this.id;
    }
  }

  /**
   * The bootstrap leader leads term 1 once its bootstrap is durable. Safe
   * because term 1 can have no other leader: every founding replica voted
   * for it in term 1 from the start (the same vote, derived from committed
   * metadata, also after a crash that lost the bootstrap) and any candidate
   * campaigns in term 2 or later; and no other incarnation of it leads term
   * 1: one that restarts with the bootstrap durable does not bootstrap
   * again, and one that lost it had not led yet. Entry 1, of term 1, is
   * committed by construction, so no empty entry is needed before reads.
   */
  #leadBootstrap(): void {
    if (!this.#bootstrapLeading || this.log.stableIndex() < 1) return;
    this.#bootstrapLeading = false;
    const untouched = this.role === "follower" && this.term === 1 && this.vote === this.id &&
      this.leader === 0;
    if (!untouched) return;
    this.#lead();
    this.#termStartIndex = 1;
    this.#pendingConfIndex = 1;
  }

  // ---- role transitions -------------------------------------------------

  becomeFollower(term: number, leader: number): void {
    this.#reset(term);
    this.role = "follower";
    this.leader = leader;
    this.#step = this.#stepFollower;
  }

  #becomePreCandidate(): void {
    assert(this.role !== "leader", "leader cannot become pre-candidate");
    // A pre-candidate keeps its term and vote: it only asks whether it could win.
    this.#votes.clear();
    this.role = "preCandidate";
    this.leader = 0;
    this.#step = this.#stepCandidate;
  }

  #becomeCandidate(): void {
    assert(this.role !== "leader", "leader cannot become candidate");
    this.#reset(this.term + 1);
    this.vote = this.id;
    this.role = "candidate";
    this.#step = this.#stepCandidate;
  }

  #becomeLeader(): void {
    assert(this.role === "candidate", `only a candidate can become leader, not a ${this.role}`);
    this.#lead();
    // The empty entry of the new term lets entries of earlier terms commit (only
    // current-term entries are committed by counting).
    this.#termStartIndex = this.log.lastIndex() + 1;
    this.#pendingConfIndex = this.#termStartIndex;
    this.#appendEntries([{ term: 0, index: 0, type: EntryType.Normal, data: new Uint8Array(0) }]);
  }

  #lead(): void {
    this.#reset(this.term);
    this.role = "leader";
    this.leader = this.id;
    this.#step = this.#stepLeader;
    this.#resetProgress();
  }

  #reset(term: number): void {
    if (this.term !== term) {
      this.term = term;
      this.vote = 0;
    }
    this.leader = 0;
    this.#electionElapsed = 0;
    this.#heartbeatElapsed = 0;
    this.#randomizedElectionTimeout = this.#options.electionTicks +
      Math.floor(this.#options.rng.next() * this.#options.electionTicks);
    this.leadTransferee = 0;
    this.#votes.clear();
    for (const context of this.#reads.contexts()) this.droppedReads.push(context);
    for (const context of this.#readsBeforeCommit) this.droppedReads.push(context);
    this.#reads.clear();
    this.#readsBeforeCommit = [];
    this.progress.clear();
  }

  #resetProgress(): void {
    this.progress.clear();
    const next = this.log.lastIndex() + 1;
    for (const id of [...this.conf.voters, ...this.conf.learners]) {
      const learner = this.conf.learners.includes(id);
      const progress = new Progress({
        next,
        inflightAppendsMax: this.#options.inflightAppendsMax,
        learner,
      });
      progress.recentActive = id === this.id;
      if (id === this.id) {
        progress.match = this.log.stableIndex();
        progress.becomeReplicate();
      }
      this.progress.set(id, progress);
    }
  }

  // ---- ticks --------------------------------------------------------------

  tick(): void {
    this.#ticks++;
    if (this.role === "leader") this.#tickHeartbeat();
    else this.#tickElection();
  }

  #tickElection(): void {
    this.#electionElapsed++;
    if (
      this.#promotable() && this.#electionElapsed >= this.#randomizedElectionTimeout &&
      !this.#leaderProcessActive()
    ) {
      this.#electionElapsed = 0;
      this.campaign(false);
    }
  }

  #tickHeartbeat(): void {
    this.#heartbeatElapsed++;
    this.#electionElapsed++;
    if (this.#electionElapsed >= this.#options.electionTicks) {
      this.#electionElapsed = 0;
      if (this.#options.checkQuorum && !this.#quorumActive()) {
        this.becomeFollower(this.term, 0);
        return;
      }
      // A transfer that did not finish within an election timeout is abandoned.
      this.leadTransferee = 0;
    }
    if (this.#heartbeatElapsed >= this.#options.heartbeatTicks) {
      this.#heartbeatElapsed = 0;
      this.#broadcastHeartbeat(this.#reads.lastContext());
    }
  }

  /**
   * Whether a follower keeps waiting for its leader past the election
   * timeout: while the leader's process is heard from (`isPeerActive`, any
   * group's traffic), its silence in this group is more likely a process
   * too busy to answer in time than a dead leader, and an election would
   * only add work; but never longer than `leaderPatienceTimeouts` election
   * timeouts (a leader that stepped down, e.g. removed from the group,
   * sends nothing here while its process lives on). Liveness only.
   */
  #leaderProcessActive(): boolean {
    return this.leader !== 0 && this.leader !== this.id &&
      this.#electionElapsed < leaderPatienceTimeouts * this.#options.electionTicks &&
      (this.#options.isPeerActive?.(this.leader) ?? false);
  }

  /** Whether a quorum of voters was heard from since the last check; resets the marks. */
  #quorumActive(): boolean {
    const votes = new Map<number, boolean>();
    for (const [id, progress] of this.progress) {
      if (id === this.id || progress.recentActive || this.#options.isPeerActive?.(id)) {
        votes.set(id, true);
      }
      progress.recentActive = id === this.id;
    }
    return voteResult(this.conf.voters, votes) === "won";
  }

  /** A voter may campaign, unless it is still rebuilding a lost log. */
  #promotable(): boolean {
    return this.conf.voters.includes(this.id) && !this.#recovering();
  }

  #recovering(): boolean {
    return this.recoveringTerm !== undefined && this.#options.unsafe.recoveringVotes !== true;
  }

  /**
   * Whether this replica may vote for a candidate whose log ends in
   * `lastTerm`: always, unless it is recovering and the candidate's log
   * holds no entry of a term after `recoveringTerm` (see `#finishRecovery`).
   */
  #mayVoteFor(lastTerm: number): boolean {
    return !this.#recovering() || lastTerm > this.recoveringTerm!;
  }

  /**
   * Ends the recovery of a rebuilt replica once that is safe.
   *
   * A replica rebuilt empty after its log was damaged (quarantined) has
   * forgotten what its previous incarnation promised: the entries it
   * acknowledged (leaders counted them toward commits) and the votes it
   * granted. Voting as a fresh node could elect a leader that lacks a
   * committed entry (with 3 voters: an entry committed by the leader and this
   * replica alone, the leader crashes, the third voter, lacking the entry,
   * asks this replica for its vote) or a second leader in a term (its lost
   * vote went to one candidate, its new one to another).
   *
   * `recoveringTerm` (R) is the term of the lost incarnation's hard state.
   * Terms and votes are made durable before any message depends on them, so
   * the lost incarnation voted and acknowledged entries in terms <= R only.
   * The rules:
   *
   * 1. The replica starts in term R + 1, so it never votes again in a term
   *    its lost incarnation voted in, and it refuses appends of terms <= R:
   *    its log holds only what leaders of terms > R sent it. (A leader still
   *    in R learns of the newer term from its answer and steps down: one
   *    election.)
   * 2. It never campaigns, and grants a (pre-)vote only to a candidate whose
   *    last entry is of a term > R (besides the usual checks).
   * 3. It ends the recovery once its log holds, at or below its commit index,
   *    an entry of a term > R.
   *
   * Why that is safe, where Raft's proof needs a voter that remembers: let an
   * entry e of term <= R be committed with the lost incarnation's
   * acknowledgement. The first leader of a term > R was elected without this
   * replica (no candidate yet had an entry of such a term, rule 2), and the
   * lost incarnation never saw that term; so its voters intersect e's commit
   * quorum outside this replica, in a voter that stored e before voting, and
   * it holds e (Leader Completeness). By induction every later leader does: a
   * vote of this replica goes only to a candidate holding an entry of a term
   * > R, whose log up to it is that term's leader's (Log Matching). An entry
   * of a term > R at or below this replica's commit index is never
   * truncated, and its prefix is a leader's log, so this replica then holds
   * every such e itself and may vote and campaign like any replica (rule 3).
   * Its own acknowledgements since the rebuild are true of its log, so they
   * count toward commits all along, and nothing depends on message timing:
   * a delayed answer of the lost incarnation carries a term <= R.
   *
   * The price: until a leader of a term > R has been elected without it, the
   * group needs a majority of other voters to elect one.
   */
  #finishRecovery(): void {
    const recoveringTerm = this.recoveringTerm;
    if (recoveringTerm === undefined) return;
    if ((this.log.term(this.log.committed) ?? 0) <= recoveringTerm) return;
    this.recoveringTerm = undefined;
    this.recovered = true;
  }

  // ---- elections ----------------------------------------------------------

  /**
   * Starts an election: a pre-election first when PreVote is on, unless this
   * is a leadership transfer, which also bypasses the voters' leases.
   */
  campaign(transfer: boolean): void {
    if (this.role === "leader" || !this.#promotable() || this.#hasUnappliedConf()) return;
    if (this.#options.preVote && !transfer) this.#runElection("preElection");
    else this.#runElection(transfer ? "transfer" : "election");
  }

  #runElection(kind: "preElection" | "election" | "transfer"): void {
    const pre = kind === "preElection";
    if (pre) this.#becomePreCandidate();
    else this.#becomeCandidate();
    const type: MessageType = pre ? "preVote" : "vote";
    const term = pre ? this.term + 1 : this.term;
    this.#votes.set(this.id, true);
    if (voteResult(this.conf.voters, this.#votes) === "won") {
      this.#onElectionWon(pre);
      return;
    }
    for (const id of this.conf.voters) {
      if (id === this.id) continue;
      this.#send({
        ...this.#blank(type, id),
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(kind === "transfer" ? { transfer: true } : {}),
      });
    }
  }

  #onElectionWon(pre: boolean): void {
    if (pre) this.#runElection("election");
    else this.#becomeLeader();
  }

  /** A committed but unapplied conf change means this replica's conf may be stale. */
  #hasUnappliedConf(): boolean {
    if (this.log.committed <= this.log.applied) return false;
    const entries = this.log.slice(this.log.applied + 1, this.log.committed + 1) ?? [];
    // Index 1 is the bootstrap conf, already in effect from construction.
    return entries.some((entry) => entry.type === EntryType.ConfChange && entry.index > 1);
  }

  // ---- step -------------------------------------------------------------

  step(message: Message): void {
    assert(
      message.to === this.id,
      () => `message for ${message.to} delivered to ${this.id}`,
    );
    if (message.term > this.term) {
      if (!this.#acceptHigherTerm(message)) return;
    } else if (message.term < this.term) {
      this.#answerLowerTerm(message);
      return;
    }
    if (message.type === "vote" || message.type === "preVote") {
      this.#handleVoteRequest(message);
    } else {
      this.#step(message);
    }
  }

  /** Returns false when the message must be ignored. */
  #acceptHigherTerm(message: Message): boolean {
    const isVote = message.type === "vote" || message.type === "preVote";
    if (isVote) {
      const inLease = this.#options.checkQuorum && this.leader !== 0 &&
        this.#electionElapsed < this.#options.electionTicks;
      // A node that heard from a live leader recently ignores disruptive campaigns.
      if (inLease && !message.transfer) return false;
    }
    if (message.type === "preVote") return true;
    if (message.type === "preVoteResp" && !message.reject) return true;
    const fromLeader = message.type === "app" || message.type === "heartbeat" ||
      message.type === "snap";
    this.becomeFollower(message.term, fromLeader ? message.from : 0);
    return true;
  }

  #answerLowerTerm(message: Message): void {
    const fromStaleLeader = message.type === "app" || message.type === "heartbeat";
    // A recovering replica always answers: its newer term is what makes a
    // leader of the old term step down (see #finishRecovery).
    const answer = this.#options.checkQuorum || this.#options.preVote ||
      this.recoveringTerm !== undefined;
    if (answer && fromStaleLeader) {
      // Tell the stale leader about the new term; otherwise, without term
      // inflation by campaigns, it would never learn it was deposed.
      this.#send(this.#blank("appResp", message.from));
    } else if (message.type === "preVote") {
      this.#send({ ...this.#blank("preVoteResp", message.from), reject: true });
    }
  }

  #handleVoteRequest(message: Message): void {
    const pre = message.type === "preVote";
    const canVote = this.#mayVoteFor(message.logTerm) &&
      (this.vote === message.from || (this.vote === 0 && this.leader === 0) ||
        (pre && message.term > this.term));
    const upToDate = this.#options.unsafe.grantVoteWithoutLogCheck === true ||
      this.log.isUpToDate(message.index, message.logTerm);
    const type = pre ? "preVoteResp" : "voteResp";
    if (canVote && upToDate) {
      this.#send({ ...this.#blank(type, message.from), term: message.term });
      if (!pre) {
        this.#electionElapsed = 0;
        this.vote = message.from;
      }
    } else {
      this.#send({ ...this.#blank(type, message.from), reject: true });
    }
  }

  #stepFollower(message: Message): void {
    switch (message.type) {
      case "app":
      case "heartbeat":
      case "snap":
        this.#electionElapsed = 0;
        this.leader = message.from;
        this.#handleFromLeader(message);
        return;
      case "timeoutNow":
        this.campaign(true);
        return;
      default:
        return;
    }
  }

  #stepCandidate(message: Message): void {
    switch (message.type) {
      case "app":
      case "heartbeat":
      case "snap":
        this.becomeFollower(message.term, message.from);
        this.#handleFromLeader(message);
        return;
      case "preVoteResp":
      case "voteResp":
        this.#handleVoteResponse(message);
        return;
      default:
        return;
    }
  }

  #handleVoteResponse(message: Message): void {
    const pre = this.role === "preCandidate";
    if ((message.type === "preVoteResp") !== pre) return;
    this.#votes.set(message.from, !message.reject);
    const result = voteResult(this.conf.voters, this.#votes);
    if (result === "won") this.#onElectionWon(pre);
    else if (result === "lost") this.becomeFollower(this.term, 0);
  }

  #stepLeader(message: Message): void {
    const progress = this.progress.get(message.from);
    if (!progress) return;
    if (message.type === "appResp") {
      progress.recentActive = true;
      progress.lastHeardTick = this.#ticks;
      this.#handleAppendResponse(message, progress);
    } else if (message.type === "heartbeatResp") {
      progress.recentActive = true;
      progress.lastHeardTick = this.#ticks;
      this.#handleHeartbeatResponse(message, progress);
    }
  }

  // ---- follower side of replication ------------------------------------

  #handleFromLeader(message: Message): void {
    if (message.type === "app") this.#handleAppend(message);
    else if (message.type === "heartbeat") this.#handleHeartbeat(message);
    else this.#handleSnapshot(message);
    this.#finishRecovery();
  }

  #handleAppend(message: Message): void {
    const response = this.#blank("appResp", message.from);
    if (message.index < this.log.committed) {
      this.#send({ ...response, index: this.log.committed });
      return;
    }
    const lastNew = this.log.maybeAppend(
      message.index,
      message.logTerm,
      message.commit,
      message.entries,
    );
    if (lastNew !== undefined) {
      // An accepted commit notice is not answered: the leader learns of
      // these entries from the answers to the appends that carried them (or,
      // if one was lost, from the resend a heartbeat answer triggers).
      if (message.commitNotice !== true) this.#send({ ...response, index: lastNew });
      return;
    }
    // Fast backtracking: point the leader at the last index whose term is
    // not above the leader's term there, skipping a whole term per round trip.
    const hint = this.log.findConflictByTerm(
      Math.min(message.index, this.log.lastIndex()),
      message.logTerm,
    );
    this.#send({
      ...response,
      index: message.index,
      reject: true,
      rejectHint: hint,
      logTerm: this.log.term(hint) ?? 0,
    });
  }

  #handleHeartbeat(message: Message): void {
    this.log.commitTo(Math.min(message.commit, this.log.lastIndex()));
    const response = this.#blank("heartbeatResp", message.from);
    this.#send(message.context ? { ...response, context: message.context } : response);
  }

  #handleSnapshot(message: Message): void {
    const snapshot = message.snapshot;
    assert(snapshot !== undefined, "snap message without snapshot");
    const response = this.#blank("appResp", message.from);
    if (snapshot.index <= this.log.committed) {
      this.#send({ ...response, index: this.log.committed });
    } else if (this.log.matchTerm(snapshot.index, snapshot.term)) {
      // Our log already holds the snapshot's last entry: fast-forward commit.
      // Answer with the commit index, not our last index, whose tail beyond
      // the snapshot may be stale entries the leader does not have.
      this.log.commitTo(snapshot.index);
      this.#send({ ...response, index: this.log.committed });
    } else {
      this.log.restore(snapshot);
      this.conf = { voters: [...snapshot.conf.voters], learners: [...snapshot.conf.learners] };
      this.#send({ ...response, index: this.log.lastIndex() });
    }
  }

  // ---- leader side of replication --------------------------------------

  #handleAppendResponse(message: Message, progress: Progress): void {
    if (message.reject) {
      const hint = message.logTerm > 0
        ? this.log.findConflictByTerm(message.rejectHint, message.logTerm)
        : message.rejectHint;
      // A hint below `match` means the follower lost entries it had
      // acknowledged (a torn tail cut at a restart this leader did not see,
      // a rebuilt replica): `maybeDecreaseTo` then lowers `match` and probes
      // from the hint instead of ignoring the rejection as stale forever.
      if (progress.maybeDecreaseTo(message.index, hint) && progress.state === "replicate") {
        progress.becomeProbe();
      }
      return;
    }
    assert(
      message.index <= this.log.lastIndex(),
      `n${message.from} holds index ${message.index} beyond leader n${this.id}'s last index ${this.log.lastIndex()} (leader completeness)`,
    );
    const probeConfirmed = progress.state === "probe" && progress.match === message.index;
    if (!progress.maybeUpdate(message.index) && !probeConfirmed) return;
    if (progress.state === "probe") {
      progress.becomeReplicate();
    } else if (progress.state === "snapshot" && progress.match >= progress.pendingSnapshot) {
      progress.becomeProbe();
      progress.becomeReplicate();
    }
    this.#maybeCommit();
    this.#noteCaughtUp(progress);
    if (message.from === this.leadTransferee && progress.match === this.log.lastIndex()) {
      this.#send(this.#blank("timeoutNow", message.from));
    }
  }

  #handleHeartbeatResponse(message: Message, progress: Progress): void {
    progress.onHeartbeatResponse();
    this.#noteCaughtUp(progress);
    // In replicate state a lost append leaves `next` beyond what the peer has;
    // an append at `next` then makes it reject and the leader probe back.
    if (progress.match < this.log.lastIndex()) progress.resendDue = true;
    const snapshotStale = this.#ticks - progress.snapshotSentTick >= this.#options.electionTicks;
    if (progress.state === "snapshot" && snapshotStale) progress.becomeProbe();
    if (message.context === undefined || this.conf.voters.length === 1) return;
    const confirmed = this.#reads.acknowledge(
      message.from,
      message.context,
      (acks) => voteResult(this.conf.voters, new Map([...acks].map((id) => [id, true]))) === "won",
    );
    for (const read of confirmed) this.readStates.push(read);
  }

  /** Sends pending appends to every peer; called once per Ready so proposals travel batched. */
  flush(): void {
    if (this.role !== "leader") return;
    // forEach with one callback made at construction: `for (const [id, p] of
    // map)` allocated an entry and an iterator result per peer on every call
    // (1.6 KB per publish on a 3-peer leader, the largest single source).
    this.progress.forEach(this.#flushEach);
  }

  readonly #flushEach = (progress: Progress, id: number): void => {
    if (id !== this.id) this.#flushTo(id, progress);
  };

  #flushTo(id: number, progress: Progress): void {
    const lastIndex = this.log.lastIndex();
    if (progress.state === "probe") {
      const needed = progress.match < lastIndex || progress.commitSent < this.log.committed;
      if (needed && !progress.probeSent) this.#sendAppend(id, progress);
      return;
    }
    // Pipelining: several appends in flight, each at most appendBytesMax.
    while (!progress.isPaused() && progress.next <= lastIndex) {
      // A lazy follower's next append may wait for the answer to the one in
      // flight (`#sendAppend`'s `holdLazy`); a resend after a lost append
      // (below) does not.
      if (!this.#sendAppend(id, progress, true)) break;
    }
    // A lost append (noticed at a heartbeat answer) is sent again, and
    // answered; a new commit index alone goes out as a commit notice.
    if (!progress.isPaused() && progress.resendDue) this.#sendAppend(id, progress);
    else if (progress.commitSent < this.log.committed) this.#sendCommit(id, progress);
    progress.resendDue = false;
  }

  /**
   * A new commit index reaches a follower in replicate state at once, even
   * one whose appends are paused (all `inflightAppendsMax` in flight), as an
   * empty append after the entries already sent (etcd's `CanBumpCommit`):
   * its subscribers and reads then need not wait for an acknowledgement or
   * a heartbeat. The follower commits only up to the entries it holds that
   * match this leader's log at `next - 1`; if the appends before it were
   * lost it rejects, and the leader probes as after any lost append. It
   * does not answer an acceptance (`commitNotice`): with one publish at a
   * time, those answers were two of the ten messages of every publish.
   */
  #sendCommit(to: number, progress: Progress): void {
    if (progress.state !== "replicate") return;
    // A lazy follower with an append in flight does not use a commit index
    // before it answers; the next append or heartbeat carries it.
    if (progress.lazy && progress.inflightCount > 0) return;
    const previous = progress.next - 1;
    const logTerm = this.log.term(previous);
    // Compacted below `next`: the next append or heartbeat carries the commit.
    if (logTerm === undefined) return;
    const commit = this.log.committed;
    this.#send({
      ...this.#blank("app", to),
      index: previous,
      logTerm,
      entries: [],
      commit,
      commitNotice: true,
    });
    progress.commitSent = commit;
  }

  /**
   * Returns false when a snapshot was sent instead of entries, or when
   * `holdLazy` held them back for a lazy follower (below).
   */
  #sendAppend(to: number, progress: Progress, holdLazy = false): boolean {
    const previous = progress.next - 1;
    const logTerm = this.log.term(previous);
    const entries = this.log.slice(
      progress.next,
      this.log.lastIndex() + 1,
      this.#options.appendBytesMax,
    );
    if (logTerm === undefined || entries === undefined) {
      this.#sendSnapshot(to, progress);
      return false;
    }
    const commit = this.log.committed;
    const append: Message = {
      ...this.#blank("app", to),
      index: previous,
      logTerm,
      entries,
      commit,
    };
    const through = previous + entries.length;
    // The append carries all the leader has (`Progress.completeThrough`).
    const complete = through === this.log.lastIndex();
    if (entries.length > 0 && this.#options.lazyFollowers && this.#syncsLazily(to, progress)) {
      // `holdLazy`: a lazy follower handles its appends a lazy wait late
      // anyway, so while one is in flight the entries that come meanwhile go
      // in one append once it answers. Per publish that saves the leader a
      // send and the follower a wakeup and a Raft step (one publish at a time
      // on 3 peers, four `bench:ab` runs: the peers' CPU per publish -13% to
      // -18%, p50 -8% to -11%, p99 -4% to -12%). Only while all the entries
      // it lacks fit in that one append: a follower further behind (large
      // messages, a burst) gets full appends pipelined, so it never falls
      // more than one append behind the lazy wait.
      if (holdLazy && progress.inflightCount > 0 && complete) return false;
      append.lazySync = true;
    }
    this.#send(append);
    progress.commitSent = commit;
    progress.sentEntries(through, entries.length);
    if (complete) {
      progress.completeThrough = through;
      progress.completeTick = this.#ticks;
    }
    return true;
  }

  /**
   * Whether voter `to` is not needed for a commit now (`lazyFollowers`):
   * a commit takes the leader and the followers furthest along, so `to` is
   * lazy when at least that many followers in replicate state rank before
   * it (higher `match`; on a tie, the eager one, then the lower id). Raft's
   * safety does not depend on it: a lazy follower answers only once durable,
   * and a late answer counts as any other.
   */
  #syncsLazily(to: number, progress: Progress): boolean {
    const voters = this.conf.voters;
    let lazy = false;
    if (voters.length >= 3 && progress.state === "replicate" && voters.includes(to)) {
      // The leader counts itself: the other voters of a majority.
      const needed = Math.floor(voters.length / 2);
      let ahead = 0;
      for (const id of voters) {
        if (id === this.id || id === to) continue;
        const other = this.progress.get(id);
        if (other === undefined || other.state !== "replicate") continue;
        if (
          other.match > progress.match ||
          (other.match === progress.match &&
            (other.lazy !== progress.lazy ? !other.lazy : id < to))
        ) ahead++;
      }
      lazy = ahead >= needed;
    }
    progress.lazy = lazy;
    return lazy;
  }

  #sendSnapshot(to: number, progress: Progress): void {
    const snapshot = this.#store.snapshot();
    assert(snapshot !== undefined, "log compacted without a snapshot");
    this.#send({ ...this.#blank("snap", to), snapshot });
    progress.becomeSnapshot(snapshot.index, this.#ticks);
  }

  #broadcastHeartbeat(context: Uint8Array | undefined): void {
    for (const [id, progress] of this.progress) {
      if (id === this.id) continue;
      const commit = Math.min(progress.match, this.log.committed);
      const heartbeat = { ...this.#blank("heartbeat", id), commit };
      this.#send(context ? { ...heartbeat, context } : heartbeat);
    }
  }

  /**
   * Marks `progress` caught up now if its acknowledged log reaches the commit
   * index, or as of the tick it was sent all the leader had if it answered
   * that (`Progress.completeThrough`).
   */
  #noteCaughtUp(progress: Progress): void {
    if (progress.match >= this.log.committed) progress.lastCaughtUpTick = this.#ticks;
    else if (progress.match >= progress.completeThrough) {
      progress.lastCaughtUpTick = Math.max(progress.lastCaughtUpTick ?? 0, progress.completeTick);
    }
  }

  #maybeCommit(): void {
    const voters = this.conf.voters;
    if (this.#matchesScratch.length < voters.length) {
      this.#matchesScratch = new Float64Array(voters.length * 2);
    }
    const matches = this.#matchesScratch;
    for (let at = 0; at < voters.length; at++) {
      matches[at] = this.progress.get(voters[at])?.match ?? 0;
    }
    const index = majorityIndex(matches, voters.length);
    if (index <= this.log.committed) return;
    // Only entries of the current term are committed by counting (Raft §5.4.2).
    const currentTerm = this.log.term(index) === this.term;
    if (!currentTerm && this.#options.unsafe.commitOldTermEntries !== true) return;
    this.log.commitTo(index);
    if (this.log.term(this.log.committed) === this.term && this.#readsBeforeCommit.length > 0) {
      const waiting = this.#readsBeforeCommit;
      this.#readsBeforeCommit = [];
      for (const context of waiting) this.readIndex(context);
    }
  }

  /**
   * Forgets what this leader recorded of follower `id`'s log (etcd's
   * becomeProbe with `match` reset): its process restarted, and a restart may
   * have cut a torn tail or rebuilt the replica, so an old `match` may name
   * entries it no longer holds. The follower is probed from the leader's
   * last index again, and counts toward commits and `in_sync` only once it
   * acknowledges anew. Does nothing on a non-leader or for an unknown id.
   */
  resetProgress(id: number): void {
    if (this.role !== "leader" || id === this.id) return;
    this.progress.get(id)?.reset(this.log.lastIndex() + 1);
  }

  /** Ticks since this replica started (the clock of `Progress.lastHeardTick`). */
  get ticks(): number {
    return this.#ticks;
  }

  /** The shell made entries up to (index, term) durable: the leader may count them now. */
  persisted(index: number, term: number): void {
    this.log.stableTo(index, term);
    this.#leadBootstrap();
    if (this.role !== "leader") return;
    const own = this.progress.get(this.id);
    if (own && own.maybeUpdate(this.log.stableIndex())) this.#maybeCommit();
    if (own) this.#noteCaughtUp(own);
  }

  // ---- leader operations --------------------------------------------------

  propose(data: Uint8Array, type: EntryType): number {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (this.leadTransferee !== 0) {
      throw new ProposalDroppedError(
        `Cannot propose during leadership transfer to ${this.leadTransferee}`,
      );
    }
    if (this.log.lastIndex() - this.log.committed >= this.#options.uncommittedEntriesMax) {
      throw new ProposalDroppedError(
        `Cannot propose as uncommittedEntriesMax (${this.#options.uncommittedEntriesMax}) is reached`,
      );
    }
    this.#appendEntries([{ term: 0, index: 0, type, data }]);
    return this.log.lastIndex();
  }

  proposeConfChange(change: ConfChange): number {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (this.#pendingConfIndex > this.log.applied) {
      throw new ProposalDroppedError(
        `Cannot change membership while the change at ${this.#pendingConfIndex} is not applied`,
      );
    }
    const invalid = validateConfChange(this.conf, change);
    if (invalid !== undefined) throw new RangeError(invalid);
    const index = this.propose(encodeConfChange(change), EntryType.ConfChange);
    this.#pendingConfIndex = index;
    return index;
  }

  #appendEntries(entries: Entry[]): void {
    let index = this.log.lastIndex();
    for (const entry of entries) {
      entry.term = this.term;
      entry.index = ++index;
    }
    this.log.append(entries);
    if (this.#options.unsafe.countUnsyncedOwnLog === true) {
      this.progress.get(this.id)?.maybeUpdate(this.log.lastIndex());
    }
    this.#maybeCommit();
  }

  readIndex(context: Uint8Array): void {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (this.log.term(this.log.committed) !== this.term) {
      // The commit index of a fresh leader may lag; wait for its first commit.
      if (this.#readsBeforeCommit.length >= this.#options.readsPendingMax) {
        throw new ProposalDroppedError(`Cannot queue read as readsPendingMax is reached`);
      }
      this.#readsBeforeCommit.push(context);
      return;
    }
    if (this.conf.voters.length === 1 || this.#options.unsafe.readIndexWithoutQuorum === true) {
      this.readStates.push({ index: this.log.committed, context });
      return;
    }
    this.#reads.add(this.log.committed, context, this.id);
    this.#broadcastHeartbeat(context);
  }

  transferLeadership(target: number): void {
    if (this.role !== "leader") throw new NotLeaderError(this.leader);
    if (!this.conf.voters.includes(target)) {
      throw new RangeError(`Cannot transfer leadership as node ${target} is not a voter`);
    }
    if (target === this.id || target === this.leadTransferee) return;
    this.leadTransferee = target;
    this.#electionElapsed = 0;
    if (this.progress.get(target)?.match === this.log.lastIndex()) {
      this.#send(this.#blank("timeoutNow", target));
    }
  }

  /** Applies a committed conf change (called by `RaftNode.advance` in log order). */
  applyConfEntry(entry: Entry): void {
    const change = decodeConfChange(entry.data);
    this.conf = applyConfChange(this.conf, change);
    if (this.role !== "leader") return;
    if (!this.conf.voters.includes(this.id) && !this.conf.learners.includes(this.id)) {
      // A removed leader steps down; the remaining voters elect a new one.
      this.becomeFollower(this.term, 0);
      return;
    }
    this.#syncProgressWithConf();
    if (!this.conf.voters.includes(this.leadTransferee)) this.leadTransferee = 0;
    this.#maybeCommit();
  }

  #syncProgressWithConf(): void {
    const members = new Set([...this.conf.voters, ...this.conf.learners]);
    for (const id of this.progress.keys()) if (!members.has(id)) this.progress.delete(id);
    for (const id of members) {
      const learner = this.conf.learners.includes(id);
      const existing = this.progress.get(id);
      if (existing) {
        existing.learner = learner;
        continue;
      }
      const next = this.log.lastIndex() + 1;
      const progress = new Progress({
        next,
        inflightAppendsMax: this.#options.inflightAppendsMax,
        learner,
      });
      progress.recentActive = true;
      this.progress.set(id, progress);
    }
  }

  // ---- helpers ----------------------------------------------------------------

  #blank(type: MessageType, to: number): Message {
    return blankMessage(type, this.id, to, this.term);
  }

  #send(message: Message): void {
    this.messages.push(message);
  }
}
