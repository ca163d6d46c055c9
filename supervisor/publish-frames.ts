// The wire side of the publish pool: the frames of publishes (`HPUB`/`PUB`, NATS client protocol),
// written straight into one buffer for a whole batch, and JetStream's acks read from their bytes.
//
// Why: the client's publish builds each message's protocol line as a string, encodes it with a
// TextEncoder, checks the subject with a regular expression, keeps line, headers, payload and CRLF
// as four buffers and concatenates them when it flushes (and writes to the socket every 32 KB). In
// a 300-pair `up --once` that was 13 % of the worker's busy main thread, for subjects and headers
// this process wrote itself. The
// publish pool (publish-pool.ts) writes a batch's frames here, byte by byte, and hands the buffer
// to the client as one command: the bytes on the wire and their order are the client's own.
//
// Only what is plain ASCII without whitespace (subjects) or plain ASCII (header text) is framed
// here; `frameSize` answers -1 for anything else, or for a message the client would refuse (over
// the server's max_payload, headers on a server without them), and the caller hands that message
// to the client's own publish, which sends it or throws its own error.

import { LastDecoded } from "../protocol/last-decoded.js";

const CR = 13;
const LF = 10;
const SPACE = 32;
const DOT = 46;
const HPUB = [72, 80, 85, 66, 32]; // "HPUB "
const PUB = [80, 85, 66, 32]; // "PUB "

/** Length of a subject (or reply) token string if it can be framed as it is (ASCII, no whitespace or control characters), else -1. */
export function subjectLength(s: string): number {
  const n = s.length;
  if (n === 0) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c <= SPACE || c > 126) return -1;
  }
  return n;
}

/** Length of header text if it is plain ASCII (its bytes are its characters), else -1. */
export function asciiLength(s: string): number {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 127) return -1;
  return s.length;
}

function digits(n: number): number {
  let d = 1;
  while (n >= 10) {
    n = Math.floor(n / 10);
    d++;
  }
  return d;
}

/**
 * Bytes of the frame that publishes `dataLength` bytes (after `headerText`, if any) to `subject`
 * with reply subject `<replyPrefix>.<replyId>`, or -1 when the caller must leave it to the client:
 * a subject or header text this module does not frame, more than `maxPayload` bytes, or headers
 * when `headersAllowed` is false.
 */
export function frameSize(subject: string, replyPrefix: string, replyId: number, headerText: string | null, dataLength: number, maxPayload: number, headersAllowed: boolean): number {
  const s = subjectLength(subject);
  const r = subjectLength(replyPrefix);
  if (s < 0 || r < 0 || !Number.isSafeInteger(replyId) || replyId < 0) return -1;
  const reply = r + 1 + digits(replyId);
  if (headerText === null) {
    if (dataLength > maxPayload) return -1;
    return PUB.length + s + 1 + reply + 1 + digits(dataLength) + 2 + dataLength + 2;
  }
  if (!headersAllowed) return -1;
  const h = asciiLength(headerText);
  if (h < 0 || h + dataLength > maxPayload) return -1;
  return HPUB.length + s + 1 + reply + 1 + digits(h) + 1 + digits(h + dataLength) + 2 + h + dataLength + 2;
}

function writeAscii(buf: Uint8Array, off: number, s: string): number {
  for (let i = 0; i < s.length; i++) buf[off++] = s.charCodeAt(i);
  return off;
}

function writeUint(buf: Uint8Array, off: number, n: number): number {
  const end = off + digits(n);
  let i = end;
  do {
    buf[--i] = 48 + (n % 10);
    n = Math.floor(n / 10);
  } while (n > 0);
  return end;
}

/**
 * Writes the frame `frameSize` measured (it must not have answered -1) at `off` and returns the
 * offset after it: `HPUB <subject> <reply> <hlen> <hlen+len>\r\n<headers><data>\r\n`, or `PUB
 * <subject> <reply> <len>\r\n<data>\r\n` without headers, as the client writes them.
 */
export function writeFrame(buf: Uint8Array, off: number, subject: string, replyPrefix: string, replyId: number, headerText: string | null, data: Uint8Array): number {
  const verb = headerText === null ? PUB : HPUB;
  for (let i = 0; i < verb.length; i++) buf[off++] = verb[i];
  off = writeAscii(buf, off, subject);
  buf[off++] = SPACE;
  off = writeAscii(buf, off, replyPrefix);
  buf[off++] = DOT;
  off = writeUint(buf, off, replyId);
  buf[off++] = SPACE;
  if (headerText !== null) {
    off = writeUint(buf, off, headerText.length);
    buf[off++] = SPACE;
    off = writeUint(buf, off, headerText.length + data.length);
  } else {
    off = writeUint(buf, off, data.length);
  }
  buf[off++] = CR;
  buf[off++] = LF;
  if (headerText !== null) off = writeAscii(buf, off, headerText);
  buf.set(data, off);
  off += data.length;
  buf[off++] = CR;
  buf[off++] = LF;
  return off;
}

/** A JetStream publish ack: the stream that stored the message, its sequence there, and whether it was a duplicate. */
export type PubAck = { stream: string; seq: number; duplicate: boolean };

const ACK_HEAD = '{"stream":"';
/** The stream named in the last ack: a connection's acks come from a few streams. */
const lastStream = new LastDecoded((b) => String.fromCharCode(...b));

/** The offset after `s` at `at` (spaces before it skipped), or -1 if `s` is not there. */
function expect(b: Uint8Array, at: number, s: string): number {
  while (at < b.length && b[at] === SPACE) at++;
  if (at + s.length > b.length) return -1;
  for (let i = 0; i < s.length; i++) if (b[at + i] !== s.charCodeAt(i)) return -1;
  return at + s.length;
}

/**
 * A publish ack in the form the server writes for a stored message, `{"stream":"S", "seq":N}` or
 * `{"stream":"S", "seq":N,"duplicate": true}` (spaces between the parts as any server version
 * puts them), read from its bytes; null for anything else (an error, a domain, escapes in the
 * name), which the caller reads with JSON.parse. Every output has an ack: decoding each to a
 * string and parsing it as JSON cost about as much as framing the output.
 */
export function readPubAck(b: Uint8Array): PubAck | null {
  if (expect(b, 0, ACK_HEAD) !== ACK_HEAD.length) return null;
  const from = ACK_HEAD.length;
  let i = from;
  while (i < b.length && b[i] !== 34) {
    if (b[i] === 92 || b[i] > 126 || b[i] < 32) return null; // escapes or non-ASCII: leave it to JSON.parse
    i++;
  }
  if (i >= b.length || i === from) return null;
  const to = i;
  i = expect(b, i + 1, ",");
  if (i >= 0) i = expect(b, i, '"seq":');
  if (i < 0) return null;
  while (i < b.length && b[i] === SPACE) i++;
  let seq = 0;
  const start = i;
  while (i < b.length && b[i] >= 48 && b[i] <= 57) seq = seq * 10 + (b[i++] - 48);
  if (i === start || i - start > 15) return null;
  let duplicate = false;
  const dup = expect(b, i, ",");
  if (dup >= 0) {
    i = expect(b, dup, '"duplicate":');
    if (i >= 0) i = expect(b, i, "true");
    if (i < 0) return null;
    duplicate = true;
  }
  i = expect(b, i, "}");
  if (i !== b.length) return null;
  return { stream: lastStream.of(b, from, to), seq, duplicate };
}
