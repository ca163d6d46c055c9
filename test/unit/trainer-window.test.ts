// The trainer counts candles by their indicators record's dedup id (`<tf>:<pair>:<window_start_ms>`),
// without decoding the payload; any other id leaves it to the decode-and-check path.
import { test } from "node:test";
import assert from "node:assert/strict";
import { windowEndOf } from "../../actors/trainer/actor.js";
import { WireMsg } from "../../protocol/wire-headers.js";

function withId(id: string | null): WireMsg {
  const block = new TextEncoder().encode(id === null ? "" : `NATS/1.0\r\nContent-Type: application/msgpack\r\nNats-Msg-Id: ${id}\r\n\r\n`);
  return new WireMsg("md.indicators.1m.BTC-USD", 1, block, block.length);
}

test("trainer - a candle's end from its indicators record's dedup id, or null when the id is not of that form", () => {
  const prefix = "1m:BTC-USD:";
  assert.equal(windowEndOf(withId("1m:BTC-USD:1723161240000"), prefix, 60_000), 1723161300000);
  assert.equal(windowEndOf(withId("1m:ETH-USD:1723161240000"), prefix, 60_000), null, "another pair");
  assert.equal(windowEndOf(withId("5m:BTC-USD:1723161240000"), prefix, 60_000), null, "another timeframe");
  assert.equal(windowEndOf(withId("1m:BTC-USD:12a"), prefix, 60_000), null, "not a number");
  assert.equal(windowEndOf(withId("1m:BTC-USD:"), prefix, 60_000), null, "no start");
  assert.equal(windowEndOf(withId("1m:BTC-USD:-5"), prefix, 60_000), null, "not a window start");
  assert.equal(windowEndOf(withId(null), prefix, 60_000), null, "no headers");
});
