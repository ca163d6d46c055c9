// msgpack for the hot path: the same bytes as @msgpack/msgpack's Encoder({ ignoreUndefined: true })
// writes and the same values its Decoder reads, faster for our messages (encoding 1.4–1.9 times as
// fast, decoding 1.2–1.8 times, by kind of message: `npm run bench -- --only codec`).
//
// Why: in a many-pair run every candle becomes an indicators message (24 values and their keys), a
// prediction and an outcome, and encoding and decoding them was the largest single cost that grows
// with the number of pairs (16 % of the worker's busy time at 300 pairs, against 7 % at 3 pairs,
// where trades dominate). The library is general (streaming decode, extension types, any string);
// our messages are flat maps of ASCII keys, numbers and short ASCII strings, whose keys repeat in
// every message. So this module handles exactly that shape, caches the encoded and decoded keys,
// and hands anything else (a non-ASCII string, a Date, a typed array other than bytes, an extension
// type, malformed input) to the library for the whole value: the output is the library's by
// construction there, and equal to it everywhere else (test/unit/msgpack.test.ts compares them).
import { Decoder, Encoder } from "@msgpack/msgpack";

const libEncoder = new Encoder({ ignoreUndefined: true });
const libDecoder = new Decoder();

/** Thrown inside this module when a value or input is not of the handled shape. */
class NotHandled extends Error {}
const NOT_HANDLED = new NotHandled();

const MAX_DEPTH = 100; // the library's default: deeper values are the library's error to report

// ---- encoding --------------------------------------------------------------------------------

let out = new Uint8Array(4096);
let pos = 0;
/** Set while encoding, so a re-entrant call (there is none today) goes to the library. */
let encoding = false;

const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** Encoded map keys (header and bytes), bounded so a stream of ever-new keys cannot grow it. */
const keyCache = new Map<string, Uint8Array>();
const KEY_CACHE_MAX = 2048;

function ensure(n: number): void {
  if (pos + n <= out.length) return;
  const bigger = new Uint8Array(Math.max(out.length * 2, pos + n));
  bigger.set(out.subarray(0, pos));
  out = bigger;
}

function writeU16(v: number): void {
  out[pos] = v >>> 8;
  out[pos + 1] = v & 0xff;
  pos += 2;
}

function writeU32(v: number): void {
  out[pos] = v >>> 24;
  out[pos + 1] = (v >>> 16) & 0xff;
  out[pos + 2] = (v >>> 8) & 0xff;
  out[pos + 3] = v & 0xff;
  pos += 4;
}

function writeF64(v: number): void {
  f64[0] = v;
  if (LITTLE_ENDIAN) for (let i = 7; i >= 0; i--) out[pos++] = f64b[i];
  else for (let i = 0; i < 8; i++) out[pos++] = f64b[i];
}

function writeNumber(v: number): void {
  ensure(9);
  if (Number.isSafeInteger(v)) {
    if (v >= 0) {
      if (v < 0x80) out[pos++] = v;
      else if (v < 0x100) {
        out[pos++] = 0xcc;
        out[pos++] = v;
      } else if (v < 0x10000) {
        out[pos++] = 0xcd;
        writeU16(v);
      } else if (v < 0x100000000) {
        out[pos++] = 0xce;
        writeU32(v);
      } else {
        out[pos++] = 0xcf;
        writeU32(Math.floor(v / 0x100000000));
        writeU32(v >>> 0);
      }
    } else if (v >= -0x20) out[pos++] = 0xe0 | (v + 0x20);
    else if (v >= -0x80) {
      out[pos++] = 0xd0;
      out[pos++] = v & 0xff;
    } else if (v >= -0x8000) {
      out[pos++] = 0xd1;
      writeU16(v & 0xffff);
    } else if (v >= -0x80000000) {
      out[pos++] = 0xd2;
      writeU32(v >>> 0);
    } else {
      out[pos++] = 0xd3;
      // Two's complement over 64 bits, as DataView.setInt32(high) + setUint32(low) writes it.
      writeU32(Math.floor(v / 0x100000000) >>> 0);
      writeU32(v >>> 0);
    }
    return;
  }
  out[pos++] = 0xcb;
  writeF64(v);
}

/**
 * The header of a str, bin or array of n: the fix form (`fix` + n) below `fixMax` (0: the type has
 * none), else the smallest of the sized forms, whose type bytes follow each other from `first`:
 * 8-bit (str and bin only, `has8`), 16-bit, 32-bit.
 */
function writeHeader(n: number, fix: number, fixMax: number, first: number, has8: boolean): void {
  const sized = has8 ? first : first - 1; // type byte of the (absent) 8-bit form
  if (n < fixMax) out[pos++] = fix + n;
  else if (has8 && n < 0x100) {
    out[pos++] = first;
    out[pos++] = n;
  } else if (n < 0x10000) {
    out[pos++] = sized + 1;
    writeU16(n);
  } else {
    out[pos++] = sized + 2;
    writeU32(n);
  }
}

/** An ASCII string: its bytes are its char codes. Anything else goes to the library. */
function writeString(s: string): void {
  const n = s.length;
  ensure(5 + n);
  const start = pos;
  writeHeader(n, 0xa0, 32, 0xd9, true);
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) {
      pos = start;
      throw NOT_HANDLED;
    }
    out[pos++] = c;
  }
}

function writeKey(k: string): void {
  let enc = keyCache.get(k);
  if (enc === undefined) {
    const start = pos;
    writeString(k);
    if (keyCache.size < KEY_CACHE_MAX) keyCache.set(k, out.slice(start, pos));
    return;
  }
  const n = enc.length;
  ensure(n);
  for (let i = 0; i < n; i++) out[pos + i] = enc[i];
  pos += n;
}

function writeValue(v: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw NOT_HANDLED;
  switch (typeof v) {
    case "number":
      return writeNumber(v);
    case "string":
      return writeString(v);
    case "boolean":
      ensure(1);
      out[pos++] = v ? 0xc3 : 0xc2;
      return;
    case "undefined":
      ensure(1);
      out[pos++] = 0xc0;
      return;
    case "object":
      if (v === null) {
        ensure(1);
        out[pos++] = 0xc0;
        return;
      }
      if (Array.isArray(v)) return writeArray(v, depth);
      if (v instanceof Uint8Array) return writeBytes(v);
      {
        const proto = Object.getPrototypeOf(v);
        if (proto === Object.prototype || proto === null) return writeMap(v as Record<string, unknown>, depth);
      }
      throw NOT_HANDLED; // Date, Map, other typed arrays, class instances: the library's rules
    default:
      throw NOT_HANDLED; // bigint, symbol, function
  }
}

function writeMap(o: Record<string, unknown>, depth: number): void {
  // One pass with for-in (V8 reads `o[k]` of the loop's own key straight from the object's field,
  // where Object.keys() and o[keys[i]] was a generic lookup per key, twice: half of all encode
  // time), the header written for the key count and corrected after if undefined values were
  // skipped. For-in also walks inherited enumerable keys: none on a plain object unless
  // Object.prototype itself has been given some, which encodeMsgpack checks.
  ensure(3);
  const headerAt = pos;
  pos += 3; // room for a map16 header; a fixmap's is moved into place below
  let size = 0;
  for (const k in o) {
    const v = o[k];
    if (v === undefined) continue; // ignoreUndefined
    writeKey(k);
    writeValue(v, depth + 1);
    size++;
  }
  if (size < 16) {
    out[headerAt] = 0x80 + size;
    out.copyWithin(headerAt + 1, headerAt + 3, pos);
    pos -= 2;
  } else if (size < 0x10000) {
    out[headerAt] = 0xde;
    out[headerAt + 1] = size >>> 8;
    out[headerAt + 2] = size & 0xff;
  } else {
    // map32: a 5-byte header, so the entries move 2 bytes on
    ensure(2);
    out.copyWithin(headerAt + 5, headerAt + 3, pos);
    pos += 2;
    out[headerAt] = 0xdf;
    out[headerAt + 1] = size >>> 24;
    out[headerAt + 2] = (size >>> 16) & 0xff;
    out[headerAt + 3] = (size >>> 8) & 0xff;
    out[headerAt + 4] = size & 0xff;
  }
}

function writeArray(a: unknown[], depth: number): void {
  const n = a.length;
  ensure(5);
  writeHeader(n, 0x90, 16, 0xdc, false);
  for (let i = 0; i < n; i++) writeValue(a[i], depth + 1);
}

function writeBytes(b: Uint8Array): void {
  const n = b.byteLength;
  ensure(5 + n);
  writeHeader(n, 0, 0, 0xc4, true);
  out.set(b, pos);
  pos += n;
}

/**
 * Small results are views into a shared slab, as Node's Buffer pool does: a fresh ArrayBuffer per
 * message (what slice() makes) cost 1.6 µs of an indicators message's 6.4 µs to encode. A plain
 * Uint8Array, not a Buffer, as the library returns (decoded bytes are views of the input, so a
 * Buffer would come back as a Buffer).
 */
const SLAB_BYTES = 16 * 1024;
let slab = new ArrayBuffer(SLAB_BYTES);
let slabUsed = 0;

function copyOut(): Uint8Array {
  if (pos > SLAB_BYTES / 4) return out.slice(0, pos);
  if (slabUsed + pos > SLAB_BYTES) {
    slab = new ArrayBuffer(SLAB_BYTES);
    slabUsed = 0;
  }
  const copy = new Uint8Array(slab, slabUsed, pos);
  copy.set(out.subarray(0, pos));
  slabUsed += pos;
  return copy;
}

const EMPTY = {};
/** Whether plain objects inherit enumerable keys (someone added one to Object.prototype): for-in would see them. */
function hasInheritedKeys(): boolean {
  for (const _ in EMPTY) return true;
  return false;
}

/** msgpack bytes of `value`, a copy of its own: exactly what @msgpack/msgpack's Encoder({ ignoreUndefined: true }) returns. */
export function encodeMsgpack(value: unknown): Uint8Array {
  if (encoding || hasInheritedKeys()) return libEncoder.encode(value);
  encoding = true;
  pos = 0;
  try {
    writeValue(value, 1);
    return copyOut();
  } catch (err) {
    if (err === NOT_HANDLED) return libEncoder.encode(value);
    throw err;
  } finally {
    encoding = false;
  }
}

// ---- decoding --------------------------------------------------------------------------------

const NO_BYTES = new Uint8Array(0);
let bytes: Uint8Array = NO_BYTES;
let at = 0;
let end = 0;

/**
 * Decoded short ASCII strings (map keys, pair names, timeframes, sides), by a hash of their bytes:
 * they repeat in every message, and a string read from the cache is one the engine has seen (map
 * keys stay internalized, so property stores hit the same hidden class).
 */
const STR_CACHE_BITS = 12;
const strCacheBytes: (Uint8Array | undefined)[] = new Array(1 << STR_CACHE_BITS);
const strCacheValue: string[] = new Array(1 << STR_CACHE_BITS);
const STR_CACHE_MAX_LEN = 24;

function need(n: number): void {
  if (at + n > end) throw NOT_HANDLED; // truncated: the library reports it in its words
}

function readU16(): number {
  const v = (bytes[at] << 8) | bytes[at + 1];
  at += 2;
  return v;
}

function readU32(): number {
  const v = bytes[at] * 0x1000000 + ((bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3]);
  at += 4;
  return v;
}

function readI32(): number {
  const v = (bytes[at] << 24) | (bytes[at + 1] << 16) | (bytes[at + 2] << 8) | bytes[at + 3];
  at += 4;
  return v;
}

/** An unsigned integer of 1, 2 or 4 bytes: uint8/16/32, and the lengths of str, bin, array and map. */
function readUint(width: number): number {
  need(width);
  return width === 1 ? bytes[at++] : width === 2 ? readU16() : readU32();
}

function readF64(): number {
  if (LITTLE_ENDIAN) for (let i = 7; i >= 0; i--) f64b[i] = bytes[at++];
  else for (let i = 0; i < 8; i++) f64b[i] = bytes[at++];
  return f64[0];
}

function readF32(): number {
  if (LITTLE_ENDIAN) for (let i = 3; i >= 0; i--) f32b[i] = bytes[at++];
  else for (let i = 0; i < 4; i++) f32b[i] = bytes[at++];
  return f32[0];
}

/** An ASCII string of n bytes at `at`; anything else (UTF-8 beyond ASCII) goes to the library. */
function readString(n: number): string {
  need(n);
  const start = at;
  const stop = start + n;
  let h = n;
  for (let i = start; i < stop; i++) {
    const c = bytes[i];
    if (c >= 0x80) throw NOT_HANDLED;
    h = (Math.imul(h, 31) + c) | 0;
  }
  lastHash = h;
  at = stop;
  if (n > STR_CACHE_MAX_LEN) return Buffer.from(bytes.buffer, bytes.byteOffset + start, n).toString("latin1");
  const slot = (h ^ (h >>> 15)) & ((1 << STR_CACHE_BITS) - 1);
  const cached = strCacheBytes[slot];
  if (cached !== undefined && cached.length === n) {
    let same = true;
    for (let i = 0; i < n; i++)
      if (cached[i] !== bytes[start + i]) {
        same = false;
        break;
      }
    if (same) return strCacheValue[slot];
  }
  const s = String.fromCharCode.apply(null, bytes.subarray(start, stop) as unknown as number[]);
  strCacheBytes[slot] = bytes.slice(start, stop);
  strCacheValue[slot] = s;
  return s;
}

/**
 * A map's keys in order, and a function that makes an object of them from its values as an object
 * literal does. Assigning decoded keys one by one (o[key] = v, as the library does) left an object
 * of more than a dozen keys in V8's dictionary mode: an indicators message's 24 values were a hash
 * table that every reader then looked up by hashing, and that the next encode walked slowly.
 * A literal gets a fixed hidden class: the same for every message of a kind, fast to read.
 */
type Shape = { keys: string[]; make: (v: unknown[]) => Record<string, unknown> };
const SHAPE_BITS = 10;
/** Shapes by hash slot; a slot holds every shape that hashes to it (rarely more than one). */
const shapes: Shape[][] = Array.from({ length: 1 << SHAPE_BITS }, () => []);
let shapeCount = 0;
const SHAPES_MAX = 4096; // a producer of ever-new key sets gets assigned objects, not ever more functions
const SHAPE_MAX_KEYS = 64;

/** The hash of the last string readString() returned (of its bytes): a shape's hash combines its keys'. */
let lastHash = 0;

function makerOf(keys: string[]): Shape["make"] {
  // Keys are JSON-quoted: any string is a valid property name there, and the values come from an array.
  const body = `return {${keys.map((k, i) => `${JSON.stringify(k)}: v[${i}]`).join(", ")}};`;
  return new Function("v", body) as Shape["make"];
}

function readKey(): string {
  need(1);
  const b = bytes[at++];
  let key: string;
  if (b >= 0xa0 && b <= 0xbf) key = readString(b - 0xa0);
  else if (b === 0xd9) key = readString(readUint(1));
  else throw NOT_HANDLED; // number keys, very long keys: the library's rules
  if (key === "__proto__") throw NOT_HANDLED;
  return key;
}

function readMap(n: number, depth: number): Record<string, unknown> {
  if (n === 0) return {};
  if (n > SHAPE_MAX_KEYS) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) {
      const key = readKey();
      o[key] = readValue(depth + 1);
    }
    return o;
  }
  // Scratch arrays per depth (a map's values are read before its object is made, nested maps in
  // between): two arrays fewer per map. Values are cleared after use, so none is kept alive.
  while (scratchKeys.length <= depth) {
    scratchKeys.push(new Array<string>(SHAPE_MAX_KEYS).fill(""));
    scratchVals.push(new Array<unknown>(SHAPE_MAX_KEYS).fill(null));
  }
  const keys = scratchKeys[depth];
  const vals = scratchVals[depth];
  let h = n;
  for (let i = 0; i < n; i++) {
    keys[i] = readKey();
    h = (Math.imul(h, 0x9e3779b1) + lastHash) | 0;
    vals[i] = readValue(depth + 1);
  }
  const bucket = shapes[(h ^ (h >>> 16)) & ((1 << SHAPE_BITS) - 1)];
  for (let b = 0; b < bucket.length; b++) {
    const sk = bucket[b].keys;
    if (sk.length !== n) continue;
    let same = true;
    for (let i = 0; i < n; i++)
      if (sk[i] !== keys[i]) {
        same = false;
        break;
      }
    if (same) return made(bucket[b], vals, n);
  }
  if (shapeCount >= SHAPES_MAX) {
    const o: Record<string, unknown> = {};
    for (let i = 0; i < n; i++) o[keys[i]] = vals[i];
    vals.fill(null, 0, n);
    return o;
  }
  shapeCount++;
  const own = keys.slice(0, n);
  const shape = { keys: own, make: makerOf(own) };
  bucket.push(shape);
  return made(shape, vals, n);
}

function made(shape: Shape, vals: unknown[], n: number): Record<string, unknown> {
  const o = shape.make(vals);
  vals.fill(null, 0, n);
  return o;
}
const scratchKeys: string[][] = [];
const scratchVals: unknown[][] = [];

function readArray(n: number, depth: number): unknown[] {
  const a = new Array<unknown>(n);
  for (let i = 0; i < n; i++) a[i] = readValue(depth + 1);
  return a;
}

function readValue(depth: number): unknown {
  if (depth > MAX_DEPTH) throw NOT_HANDLED;
  need(1);
  const b = bytes[at++];
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b - 0x80, depth);
  if (b < 0xa0) return readArray(b - 0x90, depth);
  if (b < 0xc0) return readString(b - 0xa0);
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
    case 0xc5:
    case 0xc6:
      return readBytes(readUint(1 << (b - 0xc4)));
    case 0xca:
      need(4);
      return readF32();
    case 0xcb:
      need(8);
      return readF64();
    case 0xcc:
    case 0xcd:
    case 0xce:
      return readUint(1 << (b - 0xcc));
    case 0xcf: {
      need(8);
      const high = readU32();
      return high * 0x100000000 + readU32();
    }
    case 0xd0:
      need(1);
      return (bytes[at++] << 24) >> 24;
    case 0xd1:
      need(2);
      return (readU16() << 16) >> 16;
    case 0xd2:
      need(4);
      return readI32();
    case 0xd3: {
      need(8);
      const high = readI32();
      return high * 0x100000000 + readU32();
    }
    case 0xd9:
    case 0xda:
    case 0xdb:
      return readString(readUint(1 << (b - 0xd9)));
    case 0xdc:
    case 0xdd:
      return readArray(readUint(2 << (b - 0xdc)), depth);
    case 0xde:
    case 0xdf:
      return readMap(readUint(2 << (b - 0xde)), depth);
    default:
      throw NOT_HANDLED; // extension types (timestamps), 0xc1: the library's rules
  }
}

/** As the library's decoder: a view of the input, not a copy. */
function readBytes(n: number): Uint8Array {
  need(n);
  const v = bytes.subarray(at, at + n);
  at += n;
  return v;
}

/** The value msgpack `data` holds: equal to what @msgpack/msgpack's Decoder returns, and its errors for bad input. */
export function decodeMsgpack(data: Uint8Array): unknown {
  // Nothing inside a decode calls out (no callbacks, no extension hooks), so the module's reading
  // state is never shared between two decodes.
  bytes = data;
  at = 0;
  end = data.length;
  try {
    const v = readValue(1);
    if (at !== end) throw NOT_HANDLED; // extra bytes: the library says how many
    return v;
  } catch (err) {
    if (err !== NOT_HANDLED) throw err;
    for (const vals of scratchVals) vals.fill(null); // values read before the bail-out
    return libDecoder.decode(data);
  } finally {
    bytes = NO_BYTES; // the input is the caller's to keep or drop
  }
}
