/**
 * Codecs for the small files next to the segments (private): the hard state
 * and the snapshot. Each starts with a magic number and a CRC-32C of the
 * rest, so a damaged file is reported instead of being misread.
 *
 * @module
 */

import { crc32cRange } from "./crc32c.ts";
import { readUint32, writeUint32 } from "../bytes.ts";
import { readUint64, writeUint64 } from "./_record.ts";
import { EntryType, type HardState, type Snapshot } from "./types.ts";

const hardStateMagic = 0x50534853; // "PSHS"
const snapshotMagic = 0x50534e50; // "PSNP"
const hardStateBytes = 32;
const snapshotHeaderBytes = 32;

export function encodeHardState(state: HardState): Uint8Array {
  const bytes = new Uint8Array(hardStateBytes);
  writeUint32(bytes, 0, hardStateMagic);
  writeUint64(bytes, 8, state.term);
  writeUint64(bytes, 16, state.vote);
  writeUint64(bytes, 24, state.commit);
  writeUint32(bytes, 4, crc32cRange(bytes, 8, bytes.length));
  return bytes;
}

/** Returns the hard state, or a reason why the bytes are not one. */
export function decodeHardState(bytes: Uint8Array): HardState | string {
  if (bytes.length !== hardStateBytes) return `hard state has ${bytes.length} bytes`;
  if (readUint32(bytes, 0) !== hardStateMagic) return "hard state magic mismatch";
  if (crc32cRange(bytes, 8, bytes.length) !== readUint32(bytes, 4)) {
    return "hard state crc mismatch";
  }
  return { term: readUint64(bytes, 8), vote: readUint64(bytes, 16), commit: readUint64(bytes, 24) };
}

/**
 * Layout: magic u32, crc u32, index u64, term u64, voter count u32, learner
 * count u32, then voter and learner ids as u64, then the data.
 */
export function encodeSnapshot(snapshot: Snapshot): Uint8Array {
  const { voters, learners } = snapshot.conf;
  const idsBytes = 8 * (voters.length + learners.length);
  const bytes = new Uint8Array(snapshotHeaderBytes + idsBytes + snapshot.data.length);
  writeUint32(bytes, 0, snapshotMagic);
  writeUint64(bytes, 8, snapshot.index);
  writeUint64(bytes, 16, snapshot.term);
  writeUint32(bytes, 24, voters.length);
  writeUint32(bytes, 28, learners.length);
  let offset = snapshotHeaderBytes;
  for (const id of [...voters, ...learners]) {
    writeUint64(bytes, offset, id);
    offset += 8;
  }
  bytes.set(snapshot.data, offset);
  writeUint32(bytes, 4, crc32cRange(bytes, 8, bytes.length));
  return bytes;
}

/** Returns the snapshot (its data a view into `bytes`), or a reason why it is not one. */
export function decodeSnapshot(bytes: Uint8Array): Snapshot | string {
  if (bytes.length < snapshotHeaderBytes) return `snapshot has ${bytes.length} bytes`;
  if (readUint32(bytes, 0) !== snapshotMagic) return "snapshot magic mismatch";
  if (crc32cRange(bytes, 8, bytes.length) !== readUint32(bytes, 4)) return "snapshot crc mismatch";
  const voterCount = readUint32(bytes, 24);
  const learnerCount = readUint32(bytes, 28);
  const dataOffset = snapshotHeaderBytes + 8 * (voterCount + learnerCount);
  if (dataOffset > bytes.length) return "snapshot membership exceeds the file";
  const ids: number[] = [];
  for (let offset = snapshotHeaderBytes; offset < dataOffset; offset += 8) {
    ids.push(readUint64(bytes, offset));
  }
  return {
    index: readUint64(bytes, 8),
    term: readUint64(bytes, 16),
    conf: { voters: ids.slice(0, voterCount), learners: ids.slice(voterCount) },
    data: bytes.subarray(dataOffset),
  };
}

/**
 * Whether hard state `state` need not be written because the log implies
 * it: its term is 1 and the log (once durable) holds entries of term 1 and
 * none later. Term 1 is a group's bootstrap term (`Raft.#bootstrap`): its
 * only vote is the bootstrap leader's, fixed by construction, and no
 * candidate ever campaigns in term 1 (every founding replica starts in term
 * 1 and every other replica learns a term of at least 1 with its
 * configuration), so a vote of term 1 is never asked for and forgetting it
 * is safe. A store that skips the write gives back `{ term: 1, vote: 0,
 * commit: 1 }` after a restart (see {@linkcode raisedToLog}). This saves a
 * new replica its hard-state file: a temp file, two fsyncs and a rename.
 *
 * The commit index is a hint like in any other term, except past a conf
 * change: stores write the hard state whenever its commit index passed a
 * conf change after the bootstrap entry, implied or not (see
 * {@linkcode confChangeAt}), or a replica that came back below one it had
 * applied would apply an older membership again (whole-cluster seeds
 * 3854095179, 1914656949, 104).
 */
export function impliedByLog(state: HardState, lastTerm: number): boolean {
  return state.term === 1 && lastTerm === 1;
}

/**
 * Whether the commit index moving from `from` to `to` passes a conf change
 * after index 1 (the bootstrap conf, committed by construction). `typeAt`
 * gives an entry's type, or undefined when it is not at hand (counted as a
 * conf change: the hard state is then written rather than the entry read).
 * Returns the index up to which no conf change was found as `scanned`.
 */
export function confChangeAt(
  from: number,
  to: number,
  typeAt: (index: number) => EntryType | undefined,
): { passes: boolean; scanned: number } {
  let index = Math.max(from, 1) + 1;
  for (; index <= to; index++) {
    const type = typeAt(index);
    if (type === undefined || type === EntryType.ConfChange) {
      return { passes: true, scanned: index - 1 };
    }
  }
  return { passes: false, scanned: Math.max(from, to) };
}

/**
 * The hard state a store gives back at open: the one on disk, with its term
 * raised to the last entry's (or snapshot's) when it is older, and then no
 * vote. A node's term is never below its last entry's; the hard state can
 * lag it only when its write was skipped ({@linkcode impliedByLog}, term 1,
 * whose vote nobody asks for). A log of term 1 starts with the bootstrap
 * conf at index 1, committed by construction, so the commit index comes
 * back as at least 1: without it a restarted replica would not apply its
 * configuration and could never campaign.
 */
export function raisedToLog(state: HardState, lastTerm: number): HardState {
  if (state.term >= lastTerm) return state;
  const commit = lastTerm === 1 ? Math.max(state.commit, 1) : state.commit;
  return { term: lastTerm, vote: 0, commit };
}
