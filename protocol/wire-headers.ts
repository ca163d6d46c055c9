// NATS message headers on the hot paths, without the client's general-purpose header object.
//
// Every output an actor publishes carries two headers (codec and dedup id), and every message a
// worker reads has a few it looks at. The client's `MsgHdrs` validates and canonicalises each key
// on every get, set and append (an array of keys, a filter and a new string per call) and decodes
// a received message's whole header block into one: in a 300-pair `up --once` that was about a
// quarter of everything the worker allocated. Here headers are written as the wire text once, and
// read with one split of the received block.
//
// Semantics are the client's own with exact key matching (its default): values are trimmed, keys
// are compared as written, the first value of a key is what `get` returns, a missing key is "".
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { LastDecoded } from "./last-decoded.js";

const HEADER_LINE = "NATS/1.0";
const td = new TextDecoder();

/**
 * Headers for the client's publish: its own `MsgHdrs`, or headers already in wire form. The
 * client's publish asks headers for nothing but their wire form (`encode()`, which its `MsgHdrs`
 * implementation has and its type does not declare).
 */
export type PublishHeaders = MsgHdrs | WireHeaders;

/** Headers as wire text, encoded when the client sends them. */
export class WireHeaders {
  private constructor(private readonly text: string) {}

  /** `lines` are `Key: value` pairs, already checked. */
  static of(lines: string): WireHeaders {
    return new WireHeaders(`${HEADER_LINE}\r\n${lines}\r\n`);
  }

  encode(): Uint8Array {
    // Buffer.from rather than TextEncoder: a quarter of the time for strings this short (measured).
    return Buffer.from(this.text, "utf8");
  }

  toString(): string {
    return this.text;
  }
}

/** One `Key: value\r\n` line; throws on what the client would refuse (a bad key character, a line break in the value). */
export function headerLine(key: string, value: string): string {
  for (let i = 0; i < key.length; i++) {
    const c = key.charCodeAt(i);
    if (c === 58 || c < 33 || c > 126) throw new Error(`'${key[i]}' is not a valid character in a header name ("${key}")`);
  }
  if (/[\r\n]/.test(value)) throw new Error(`header ${key}: values cannot contain \\r or \\n`);
  return `${key}: ${value.trim()}\r\n`;
}

/** Received headers, read once: `get` as the client's exact match, and every (key, values) pair in order. */
export class ReadHeaders {
  constructor(
    private readonly map: Map<string, string[]>,
    /** The status code of a status message (503 no responders, 408, …), else 0. */
    readonly code: number,
  ) {}

  get(key: string): string {
    return this.map.get(key)?.[0] ?? "";
  }

  has(key: string): boolean {
    return this.map.has(key);
  }

  [Symbol.iterator](): IterableIterator<[string, string[]]> {
    return this.map.entries();
  }

  /** Parses a header block (`NATS/1.0[ code description]\r\nKey: value\r\n…`). */
  static parse(block: string): ReadHeaders {
    const lines = block.split("\r\n");
    let code = 0;
    const status = lines[0].slice(HEADER_LINE.length).trim();
    if (status) code = parseInt(status, 10) || 0;
    const map = new Map<string, string[]>();
    for (let i = 1; i < lines.length; i++) {
      const s = lines[i];
      const idx = s.indexOf(":");
      if (idx <= 0) continue;
      const k = s.slice(0, idx);
      const v = s.slice(idx + 1).trim();
      const a = map.get(k);
      if (a) a.push(v);
      else map.set(k, [v]);
    }
    return new ReadHeaders(map, code);
  }

  /** From headers the client already decoded (a message that did not come off the wire here). */
  static from(h: MsgHdrs): ReadHeaders {
    const map = new Map<string, string[]>();
    for (const [k, v] of h) map.set(k, [...v]);
    return new ReadHeaders(map, h.code);
  }
}

const NONE = new ReadHeaders(new Map(), 0);

/**
 * A message kept as its wire bytes, its header block (`hdrLen` bytes) then its payload: what the
 * input hub's ring of recent messages hands out (supervisor/message-ring.ts). Its headers are read
 * from the block as a received message's are.
 */
export class WireMsg {
  readonly data: Uint8Array;

  constructor(readonly subject: string, readonly seq: number, private readonly bytes: Uint8Array, readonly hdrLen: number) {
    this.data = bytes.subarray(hdrLen);
  }

  get headerBlock(): Uint8Array {
    return this.bytes.subarray(0, this.hdrLen);
  }

  /** The client's header object, for code that asks for one (the hot paths use readHeaders). */
  get headers(): MsgHdrs | undefined {
    if (this.hdrLen <= 0) return undefined;
    const h = natsHeaders();
    for (const [k, vs] of readHeaders(this)) for (const v of vs) h.append(k, v);
    return h;
  }
}

/** The parts of the client's received message that hold the raw header block (nats-core's MsgImpl). */
type RawMsg = { _msg?: { hdr?: number }; _rdata?: Uint8Array };

/**
 * A received message's wire bytes (header block, then payload, as one buffer) and its header
 * block's length, or null for a message that did not come off the wire here.
 */
export function wireBytesOf(m: object): { bytes: Uint8Array; hdrLen: number } | null {
  const raw = ((m as { msg?: RawMsg }).msg ?? m) as RawMsg;
  const len = raw._msg?.hdr;
  if (typeof len !== "number" || !(raw._rdata instanceof Uint8Array)) return null;
  return { bytes: raw._rdata, hdrLen: Math.max(0, len) };
}

/** The raw header block of a received message (straight off the wire, or kept by the hub's ring), or null for any other. */
function headerBlockOf(m: object): { block: Uint8Array; len: number } | null {
  const wire = wireBytesOf(m);
  if (wire) return { block: wire.bytes, len: wire.hdrLen };
  if (m instanceof WireMsg) return { block: m.headerBlock, len: m.hdrLen };
  return null;
}

/** The last value headerValue decoded: most messages repeat it (their codec). */
const lastValue = new LastDecoded((b) => td.decode(b).trim());

/**
 * One header of a received message, as `readHeaders(m).get(key)` gives it (exact key, first
 * value, trimmed; "" when absent), read straight from the header bytes without parsing the rest.
 * Every input an actor applies needs its codec (Content-Type) and nothing else: parsing the whole
 * block into a map for that was 3 % of a 300-pair run's busy main thread.
 */
export function headerValue(m: { headers?: MsgHdrs }, key: string): string {
  const b = headerBlockOf(m);
  if (b === null) return readHeaders(m).get(key);
  const { block, len } = b;
  const k = key.length;
  // The status line first, then `Key: value` lines, each ending in CRLF; an empty line ends the block.
  let i = 0;
  while (i < len && block[i] !== 13) i++;
  i += 2;
  while (i < len) {
    let e = i;
    while (e < len && block[e] !== 13) e++;
    if (e === i) break;
    let match = e - i > k && block[i + k] === 58;
    for (let j = 0; match && j < k; j++) if (block[i + j] !== key.charCodeAt(j)) match = false;
    if (match) return lastValue.of(block, i + k + 1, e);
    i = e + 2;
  }
  return "";
}

/** A received message's headers, parsed only if someone asks for one (most inputs' never are). */
export class LazyHeaders {
  private parsed: ReadHeaders | null = null;

  constructor(private readonly m: { headers?: MsgHdrs }) {}

  get(key: string): string {
    return (this.parsed ??= readHeaders(this.m)).get(key);
  }
}

/**
 * The headers of a received message (a core `Msg`, a `JsMsg`, or anything with `headers`). A
 * message straight off the wire is parsed from its header bytes without building the client's
 * header object; anything else goes through its `headers`. Not remembered on the message: the
 * input hub keeps its recent messages for subscriptions that start behind, and whatever hangs
 * on them outlives the young generation (parsed headers were the largest share of what survived
 * a scavenge); a caller that reads several headers keeps the result.
 */
export function readHeaders(m: { headers?: MsgHdrs }): ReadHeaders {
  const b = headerBlockOf(m);
  if (b) return b.len > 0 ? ReadHeaders.parse(td.decode(b.block.subarray(0, b.len))) : NONE;
  const mh = m.headers;
  return mh ? ReadHeaders.from(mh) : NONE;
}
