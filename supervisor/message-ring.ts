// The input hub's recent messages (input-hub.ts), kept as copies of their wire bytes in one
// buffer rather than as the client's message objects.
//
// Why: the hub keeps the last ten thousand messages it read, so that actors starting a little
// behind it cost no request. Kept as the client's objects (a JsMsg, its MsgImpl, its parsed reply
// subject, a view of the socket's buffer), every message a worker read outlived the young
// generation: each was copied by two scavenges and then marked in the old one. In a 300-pair
// `up --once` of 199,040 trades the scavenges took 3.5 s of a 20 s run; with no ring at all,
// 2.1–2.4 s of 17.1–17.5 s. Bytes in one buffer are nothing for the scavenger to copy, and a
// message handed out from here is a fresh copy, as short-lived as one read off the wire.
//
// Layout: entries are written one after the other into `buf` and wrap to its start when the
// next one does not fit, so the entries from the write position to the end are always the
// oldest (the previous lap's). Making room evicts the oldest entries, so the ring always holds
// an unbroken run of what was pushed: from `oldestSeq()` to the newest, nothing missing.
import { WireMsg } from "../protocol/wire-headers.js";

export class MessageRing {
  /** Allocated at the first push: a stream no actor of this process reads costs nothing. */
  private buf: Uint8Array | null = null;
  // Per entry, in slots `head`, `head + 1`, … (mod maxMessages), oldest first.
  private readonly seqs: Float64Array;
  private readonly offs: Int32Array;
  private readonly lens: Int32Array;
  private readonly hdrLens: Int32Array;
  private readonly subjectIds: Int32Array;
  private head = 0;
  private count = 0;
  /** Where the next entry's bytes go. */
  private w = 0;
  // Subjects are kept once each, as long as an entry refers to them.
  private readonly ids = new Map<string, number>();
  private readonly names: (string | null)[] = [];
  private readonly refs: number[] = [];
  private readonly freeIds: number[] = [];

  /** At most `maxMessages` entries and `maxBytes` of header blocks and payloads; 0 messages: keeps nothing. */
  constructor(readonly maxMessages: number, readonly maxBytes: number) {
    const n = Math.max(0, maxMessages);
    this.seqs = new Float64Array(n);
    this.offs = new Int32Array(n);
    this.lens = new Int32Array(n);
    this.hdrLens = new Int32Array(n);
    this.subjectIds = new Int32Array(n);
  }

  get size(): number {
    return this.count;
  }

  /** Sequence of the oldest entry, or null when empty. */
  oldestSeq(): number | null {
    return this.count > 0 ? this.seqs[this.head] : null;
  }

  /**
   * Keeps a copy of a message: `bytes` are its header block (`hdrLen` bytes, 0 for none) then its
   * payload. Sequences must increase. A message larger than a quarter of the buffer is not kept,
   * and neither is anything before it (the ring holds no run with a hole in it).
   */
  push(seq: number, subject: string, bytes: Uint8Array, hdrLen: number): void {
    if (this.maxMessages <= 0) return;
    const n = bytes.length;
    if (n > this.maxBytes >> 2 || (this.count > 0 && seq <= this.seqs[(this.head + this.count - 1) % this.maxMessages])) {
      this.clear();
      if (n > this.maxBytes >> 2) return;
    }
    this.buf ??= new Uint8Array(this.maxBytes);
    if (this.count === this.maxMessages) this.evictOldest();
    if (this.w + n > this.maxBytes) {
      // Wrap: what lies from here to the end is the previous lap's, the oldest entries.
      while (this.count > 0 && this.offs[this.head] >= this.w) this.evictOldest();
      this.w = 0;
    }
    // The entries in [w, w + n) are the oldest ones (every later one was written below w).
    while (this.count > 0 && this.offs[this.head] >= this.w && this.offs[this.head] < this.w + n) this.evictOldest();
    this.buf.set(bytes, this.w);
    const i = (this.head + this.count) % this.maxMessages;
    this.seqs[i] = seq;
    this.offs[i] = this.w;
    this.lens[i] = n;
    this.hdrLens[i] = hdrLen;
    this.subjectIds[i] = this.intern(subject);
    this.count++;
    this.w += n;
  }

  /**
   * Copies of the entries with sequence ≥ `from` whose subject `matches`, oldest first. With
   * `literal` (a filter without wildcards), subjects are compared by their kept id.
   */
  since(from: number, literal: string | null, matches: (subject: string) => boolean): WireMsg[] {
    const out: WireMsg[] = [];
    if (this.count === 0) return out;
    const only = literal === null ? -1 : (this.ids.get(literal) ?? -2);
    if (only === -2) return out;
    // The first entry at or after `from` (sequences increase).
    let lo = 0;
    let hi = this.count;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.seqs[(this.head + mid) % this.maxMessages] < from) lo = mid + 1;
      else hi = mid;
    }
    // Per subject id, whether it matches: 0 not asked yet, 1 yes, 2 no (a wildcard filter asks once per subject).
    const verdict = only >= 0 ? null : new Uint8Array(this.names.length);
    for (let k = lo; k < this.count; k++) {
      const i = (this.head + k) % this.maxMessages;
      const id = this.subjectIds[i];
      if (verdict === null) {
        if (id !== only) continue;
      } else {
        if (verdict[id] === 0) verdict[id] = matches(this.names[id]!) ? 1 : 2;
        if (verdict[id] === 2) continue;
      }
      const at = this.offs[i];
      out.push(new WireMsg(this.names[id]!, this.seqs[i], this.buf!.slice(at, at + this.lens[i]), this.hdrLens[i]));
    }
    return out;
  }

  clear(): void {
    this.head = 0;
    this.count = 0;
    this.w = 0;
    this.ids.clear();
    this.names.length = 0;
    this.refs.length = 0;
    this.freeIds.length = 0;
  }

  private evictOldest(): void {
    const id = this.subjectIds[this.head];
    if (--this.refs[id] === 0) {
      this.ids.delete(this.names[id]!);
      this.names[id] = null;
      this.freeIds.push(id);
    }
    this.head = (this.head + 1) % this.maxMessages;
    this.count--;
    if (this.count === 0) this.w = 0;
  }

  private intern(subject: string): number {
    let id = this.ids.get(subject);
    if (id === undefined) {
      id = this.freeIds.pop() ?? this.names.length;
      this.ids.set(subject, id);
      this.names[id] = subject;
      this.refs[id] = 0;
    }
    this.refs[id]++;
    return id;
  }
}
