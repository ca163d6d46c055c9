// The input hub's ring of recent messages (supervisor/message-ring.ts): whatever it hands out is a
// byte-exact copy of an unbroken run of the newest messages pushed, within its limits on count
// and bytes, however the entries wrap around its buffer.
import { test } from "node:test";
import assert from "node:assert/strict";
import { MessageRing } from "../../supervisor/message-ring.js";
import { readHeaders } from "../../protocol/wire-headers.js";

type Pushed = { seq: number; subject: string; bytes: Uint8Array; hdrLen: number };

/** A deterministic message: a header block (every third one has none) then a payload. */
function message(seq: number, subject: string, payloadLen: number): Pushed {
  const hdr = seq % 3 === 0 ? "" : `NATS/1.0\r\nNats-Msg-Id: ${subject}:${seq}\r\n\r\n`;
  const h = new TextEncoder().encode(hdr);
  const bytes = new Uint8Array(h.length + payloadLen);
  bytes.set(h, 0);
  for (let i = 0; i < payloadLen; i++) bytes[h.length + i] = (seq * 31 + i) & 0xff;
  return { seq, subject, bytes, hdrLen: h.length };
}

const all = () => true;

test("message ring - hands out the newest run, byte for byte, through many wraps of its buffer", () => {
  const ring = new MessageRing(50, 4096);
  const pushed: Pushed[] = [];
  let rnd = 7;
  const next = () => (rnd = (rnd * 1103515245 + 12345) & 0x7fffffff);
  let seq = 0;
  for (let n = 0; n < 3000; n++) {
    seq += 1 + (next() % 3); // sequences with gaps, as a stream read past deleted messages gives
    const m = message(seq, `s.${next() % 7}`, next() % 300);
    pushed.push(m);
    ring.push(m.seq, m.subject, m.bytes, m.hdrLen);
    const got = ring.since(0, null, all);
    assert.equal(got.length, ring.size);
    assert.ok(got.length >= 1 && got.length <= 50, `${got.length} entries`);
    // An unbroken run ending at the newest: exactly the last got.length pushed, in order.
    const want = pushed.slice(pushed.length - got.length);
    let bytes = 0;
    for (let i = 0; i < got.length; i++) {
      assert.equal(got[i].seq, want[i].seq);
      assert.equal(got[i].subject, want[i].subject);
      assert.deepEqual(got[i].data, want[i].bytes.subarray(want[i].hdrLen));
      assert.equal(readHeaders(got[i]).get("Nats-Msg-Id"), want[i].hdrLen ? `${want[i].subject}:${want[i].seq}` : "");
      bytes += want[i].bytes.length;
    }
    assert.ok(bytes <= 4096);
    assert.equal(ring.oldestSeq(), got[0].seq);
  }
  // Big enough a buffer: the count is the only limit.
  const roomy = new MessageRing(50, 1 << 20);
  for (const m of pushed) roomy.push(m.seq, m.subject, m.bytes, m.hdrLen);
  assert.deepEqual(roomy.since(0, null, all).map((m) => m.seq), pushed.slice(-50).map((m) => m.seq));
});

test("message ring - picks by sequence and subject: a literal filter, a wildcard matcher", () => {
  const ring = new MessageRing(100, 1 << 16);
  for (let seq = 1; seq <= 60; seq++) {
    const m = message(seq, `md.candles.1m.P${seq % 4}`, 10);
    ring.push(m.seq, m.subject, m.bytes, m.hdrLen);
  }
  assert.deepEqual(ring.since(30, "md.candles.1m.P2", all).map((m) => m.seq), [30, 34, 38, 42, 46, 50, 54, 58]);
  assert.deepEqual(ring.since(55, null, (s) => s.endsWith("P1") || s.endsWith("P3")).map((m) => m.seq), [55, 57, 59]);
  assert.deepEqual(ring.since(1, "md.candles.1m.P9", all), []);
  assert.deepEqual(ring.since(61, null, all), []);
  // What it hands out is a copy: later pushes that reuse the buffer do not change it.
  const kept = ring.since(60, null, all)[0];
  const before = Uint8Array.from(kept.data);
  for (let seq = 61; seq <= 400; seq++) {
    const m = message(seq, "md.candles.1m.P0", 200);
    ring.push(m.seq, m.subject, m.bytes, m.hdrLen);
  }
  assert.deepEqual(kept.data, before);
  // The subjects of evicted entries are not kept.
  assert.deepEqual(ring.since(0, "md.candles.1m.P2", all), []);
});

test("message ring - a message too large to keep, or a sequence that goes back, starts the run afresh", () => {
  const ring = new MessageRing(100, 1024);
  for (let seq = 1; seq <= 5; seq++) {
    const m = message(seq, "a", 10);
    ring.push(m.seq, m.subject, m.bytes, m.hdrLen);
  }
  const big = message(6, "a", 300); // over a quarter of the buffer
  ring.push(big.seq, big.subject, big.bytes, big.hdrLen);
  assert.equal(ring.size, 0, "nothing before the message it could not keep");
  assert.equal(ring.oldestSeq(), null);
  const m7 = message(7, "a", 10);
  ring.push(m7.seq, m7.subject, m7.bytes, m7.hdrLen);
  assert.equal(ring.oldestSeq(), 7);
  const back = message(3, "a", 10);
  ring.push(back.seq, back.subject, back.bytes, back.hdrLen);
  assert.deepEqual(ring.since(0, null, all).map((m) => m.seq), [3]);
  // A ring of no messages keeps nothing.
  const none = new MessageRing(0, 1024);
  none.push(m7.seq, m7.subject, m7.bytes, m7.hdrLen);
  assert.equal(none.size, 0);
  assert.equal(none.oldestSeq(), null);
});
