// Headers written and read without the client's MsgHdrs (protocol/wire-headers.ts) say exactly
// what the client's own would: the same wire bytes for an actor's output, the same values, keys
// and status read back from a header block, and the same refusals.
import { test } from "node:test";
import assert from "node:assert/strict";
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { outputHeaders, publishHeaders } from "../../protocol/codec.js";
import { headerLine, headerValue, LazyHeaders, ReadHeaders, readHeaders, WireHeaders, WireMsg } from "../../protocol/wire-headers.js";

const wire = (h: MsgHdrs) => (h as unknown as { encode(): Uint8Array }).encode();
const same = (a: Uint8Array, b: Uint8Array) => assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${Buffer.from(a)} vs ${Buffer.from(b)}`);

test("wire headers - an output's headers are byte for byte the client's", () => {
  same(outputHeaders("msgpack", "md.trades.BTC-USD:42").encode(), wire(publishHeaders("msgpack", "md.trades.BTC-USD:42")));
  same(outputHeaders("json").encode(), wire(publishHeaders("json")));
  const extra = { "Tf-Model": " v3 ", "KV-Operation": "DEL" };
  same(outputHeaders("msgpack", "x:1", extra).encode(), wire(publishHeaders("msgpack", "x:1", extra)));
  assert.equal(WireHeaders.of("").toString(), "NATS/1.0\r\n\r\n");
});

test("wire headers - bad keys and values are refused as the client refuses them", () => {
  assert.throws(() => headerLine("Bad Key", "v"), /' ' is not a valid character in a header name \("Bad Key"\)/);
  assert.throws(() => headerLine("K:", "v"), /':' is not a valid character/);
  assert.throws(() => headerLine("K", "a\r\nInjected: 1"), /header K: values cannot contain/);
  assert.throws(() => natsHeaders().set("K", "a\nb"));
});

test("wire headers - a header block reads as the client's MsgHdrs reads it", () => {
  const h = natsHeaders(503, "No Responders");
  h.append("Content-Type", "application/msgpack");
  h.append("Tf-Input", "news");
  h.append("Tf-Input", "second");
  h.append("x-lower", "  padded  ");
  const block = new TextDecoder().decode(wire(h));
  const r = ReadHeaders.parse(block);
  const fromClient = ReadHeaders.from(h);
  for (const k of ["Content-Type", "Tf-Input", "x-lower", "content-type", "Missing"]) {
    assert.equal(r.get(k), h.get(k), `get(${k})`);
    assert.equal(fromClient.get(k), h.get(k), `from(h).get(${k})`);
  }
  assert.equal(r.code, 503);
  assert.deepEqual([...r], [...h].map(([k, v]) => [k, [...v]]));
  assert.equal(ReadHeaders.parse("NATS/1.0\r\n\r\n").get("Content-Type"), "");
});

test("wire headers - readHeaders of a message that did not come off the wire reads its client headers", () => {
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  let reads = 0;
  const m = { get headers() { reads++; return h; } };
  assert.equal(readHeaders(m).get("Content-Type"), "application/json");
  assert.equal(reads, 1, "the headers getter once per read");
  assert.equal(readHeaders({}).get("Content-Type"), "");
});

test("wire headers - headerValue reads one header from the bytes as readHeaders(m).get does", () => {
  // A received message as the client holds it: its header block and payload in one buffer.
  const received = (block: string, payload = "xyz") => {
    const bytes = Buffer.concat([Buffer.from(block, "utf8"), Buffer.from(payload)]);
    return { _msg: { hdr: Buffer.byteLength(block, "utf8") }, _rdata: new Uint8Array(bytes) } as unknown as { headers?: MsgHdrs };
  };
  const blocks = [
    "NATS/1.0\r\nContent-Type: application/msgpack\r\nNats-Msg-Id: 1m:BTC-USD:1\r\n\r\n",
    "NATS/1.0\r\nNats-Msg-Id: x\r\nContent-Type: application/json\r\n\r\n",
    "NATS/1.0 503 No Responders\r\nContent-Type:   padded value  \r\n\r\n",
    "NATS/1.0\r\nContent-Type-X: not this\r\nContent-Typ: nor this\r\ncontent-type: nor this\r\nContent-Type: this\r\nContent-Type: not the second\r\n\r\n",
    "NATS/1.0\r\nContent-Type: café/crème\r\nTf-Input: news\r\n\r\n",
    "NATS/1.0\r\nContent-Type:\r\n\r\n",
    "NATS/1.0\r\nOther: 1\r\n\r\n",
    "NATS/1.0\r\n\r\n",
    // Same length as the first value read above, other bytes: the value cache must not answer for it.
    "NATS/1.0\r\nContent-Type: application/msgpacK\r\n\r\n",
    "NATS/1.0\r\nContent-Type: application/msgpack\r\n\r\n",
  ];
  for (const block of blocks) {
    const m = received(block);
    for (const key of ["Content-Type", "Nats-Msg-Id", "Tf-Input", "Missing", "Content-Typ"]) {
      assert.equal(headerValue(m, key), readHeaders(m).get(key), `${key} in ${JSON.stringify(block)}`);
    }
  }
  assert.equal(headerValue(received(blocks[3]), "Content-Type"), "this");
  assert.equal(headerValue({ _msg: { hdr: 0 }, _rdata: new Uint8Array(3) } as never, "Content-Type"), "", "no header block");
  // A message kept as its wire bytes by the input hub's ring, and one with only client headers.
  const block = blocks[1];
  const wm = new WireMsg("s", 1, new Uint8Array(Buffer.from(block + "payload")), Buffer.byteLength(block));
  assert.equal(headerValue(wm, "Content-Type"), "application/json");
  const h = natsHeaders();
  h.set("Content-Type", "application/json");
  assert.equal(headerValue({ headers: h }, "Content-Type"), "application/json");
  assert.equal(headerValue({}, "Content-Type"), "");
});

test("wire headers - LazyHeaders parses a message's headers on the first get only", () => {
  const h = natsHeaders();
  h.set("Tf-Input", "news");
  let reads = 0;
  const lazy = new LazyHeaders({ get headers() { reads++; return h; } });
  assert.equal(reads, 0, "nothing read until asked");
  assert.equal(lazy.get("Tf-Input"), "news");
  assert.equal(lazy.get("Missing"), "");
  assert.equal(reads, 1);
});
