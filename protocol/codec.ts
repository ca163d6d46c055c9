// Payload codec. msgpack by default (compact, fast); JSON when configured, so `nats sub` and
// `nats stream view` are readable. The writer announces its choice in a Content-Type header and
// readers accept both, so a system can switch codec without draining its streams.
import { headers as natsHeaders, type MsgHdrs } from "@nats-io/transport-node";
import { ErrorCode, TickflowError } from "./errors.js";
import { decodeMsgpack, encodeMsgpack } from "./msgpack.js";
import { headerLine, readHeaders, WireHeaders } from "./wire-headers.js";

export type CodecName = "msgpack" | "json";
export const CONTENT_TYPE = { msgpack: "application/msgpack", json: "application/json" } as const;
export const HDR_CONTENT_TYPE = "Content-Type";

const utf8 = new TextEncoder();
const utf8d = new TextDecoder("utf-8", { fatal: true });

// JSON has no bytes: DLQ payloads travel as {"$bytes": "<base64>"} and come back as Uint8Array.
/** JSON.stringify replacer for Tickflow values: bytes become {"$bytes": "<base64>"} (what `tail` prints, too). */
export function jsonReplacer(_k: string, v: unknown): unknown {
  if (v instanceof Uint8Array) return { $bytes: Buffer.from(v).toString("base64") };
  return v;
}
function jsonReviver(_k: string, v: unknown): unknown {
  if (v && typeof v === "object" && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (typeof o.$bytes === "string" && Object.keys(o).length === 1) return new Uint8Array(Buffer.from(o.$bytes, "base64"));
  }
  return v;
}

export function encode(value: unknown, codec: CodecName): Uint8Array {
  if (codec === "msgpack") return encodeMsgpack(value);
  return utf8.encode(JSON.stringify(value, jsonReplacer));
}

/** Decodes by the Content-Type header; without one (a hand-published message) it sniffs the first byte. */
export function decode(data: Uint8Array, contentType?: string | null): unknown {
  const codec = codecOf(data, contentType);
  try {
    if (codec === "msgpack") return decodeMsgpack(data);
    return JSON.parse(utf8d.decode(data), jsonReviver);
  } catch (err) {
    throw new TickflowError(ErrorCode.BadCodec, `payload is not valid ${codec} (${(err as Error).message})`, { cause: err });
  }
}

function codecOf(data: Uint8Array, contentType?: string | null): CodecName {
  if (contentType) {
    // Our own writers' exact values first: every message read pays for this check.
    if (contentType === CONTENT_TYPE.msgpack) return "msgpack";
    if (contentType === CONTENT_TYPE.json) return "json";
    const ct = contentType.split(";")[0].trim().toLowerCase();
    if (ct === CONTENT_TYPE.msgpack || ct === "application/x-msgpack") return "msgpack";
    if (ct === CONTENT_TYPE.json) return "json";
    throw new TickflowError(ErrorCode.BadCodec, `unsupported Content-Type "${contentType}" (expected ${CONTENT_TYPE.msgpack} or ${CONTENT_TYPE.json})`);
  }
  if (data.length === 0) throw new TickflowError(ErrorCode.BadCodec, "empty payload");
  const b = data[0];
  // JSON text starts with `{`, `[` or whitespace; a msgpack map starts with 0x80–0x8f, 0xde or 0xdf.
  if (b === 0x7b || b === 0x5b || b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) return "json";
  return "msgpack";
}

/** Decodes a received message by its Content-Type (its headers read as wire-headers.ts reads them). */
export function decodeMsg(msg: { data: Uint8Array; headers?: MsgHdrs }): unknown {
  return decode(msg.data, readHeaders(msg).get(HDR_CONTENT_TYPE) || null);
}

/** The codec line for each codec, computed once. */
const CODEC_LINE: Record<CodecName, string> = {
  msgpack: headerLine(HDR_CONTENT_TYPE, CONTENT_TYPE.msgpack),
  json: headerLine(HDR_CONTENT_TYPE, CONTENT_TYPE.json),
};

/**
 * publishHeaders() in wire form, for the publish pool (see wire-headers.ts): an actor's output
 * carries its codec, its dedup id, and any extra headers it set.
 */
export function outputHeaders(codec: CodecName, msgId?: string, extra?: Record<string, string>): WireHeaders {
  let lines = CODEC_LINE[codec];
  if (msgId) lines += headerLine("Nats-Msg-Id", msgId);
  if (extra) for (const k in extra) lines += headerLine(k, extra[k]);
  return WireHeaders.of(lines);
}

/** Headers every Tickflow publish carries: the codec and, for dedup, the deterministic message id. */
export function publishHeaders(codec: CodecName, msgId?: string, extra?: Record<string, string>): MsgHdrs {
  const h = natsHeaders();
  h.set(HDR_CONTENT_TYPE, CONTENT_TYPE[codec]);
  if (msgId) h.set("Nats-Msg-Id", msgId);
  if (extra) for (const [k, v] of Object.entries(extra)) h.set(k, v);
  return h;
}
