// A linear layer + softmax as an ONNX model, written with a small protobuf encoder (the model has
// four message kinds; a protobuf dependency would be bigger than this file). Graph:
//   features [N, dim] float ─MatMul(W [dim, C])─ Add(b [C]) ─Softmax(axis −1)─► probabilities [N, C]
// Field numbers are those of onnx/onnx.proto (IR version 8, default-domain opset 13).
import type { LinearModel } from "./softmax-regression.js";

class Pb {
  private chunks: Uint8Array[] = [];
  private varint(n: number | bigint): void {
    let v = BigInt(n);
    if (v < 0n) v += 1n << 64n;
    const bytes: number[] = [];
    do {
      let b = Number(v & 0x7fn);
      v >>= 7n;
      if (v > 0n) b |= 0x80;
      bytes.push(b);
    } while (v > 0n);
    this.chunks.push(Uint8Array.from(bytes));
  }
  private key(field: number, wire: number): void { this.varint((field << 3) | wire); }
  int(field: number, v: number): this { this.key(field, 0); this.varint(v); return this; }
  bytes(field: number, b: Uint8Array): this { this.key(field, 2); this.varint(b.length); this.chunks.push(b); return this; }
  str(field: number, s: string): this { return this.bytes(field, new TextEncoder().encode(s)); }
  msg(field: number, m: Pb): this { return this.bytes(field, m.finish()); }
  finish(): Uint8Array { return Buffer.concat(this.chunks); }
}

const FLOAT = 1; // TensorProto.DataType.FLOAT

function tensor(name: string, dims: number[], data: Float32Array): Pb {
  const t = new Pb();
  for (const d of dims) t.int(1, d); // dims
  t.int(2, FLOAT); // data_type
  t.str(8, name); // name
  const raw = new Uint8Array(data.buffer.slice(data.byteOffset, data.byteOffset + data.byteLength)); // little-endian on every supported platform
  return t.bytes(9, raw); // raw_data
}

function valueInfo(name: string, dims: (number | string)[]): Pb {
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  const tensorType = new Pb().int(1, FLOAT).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tensorType));
}

function node(op: string, inputs: string[], outputs: string[], name: string, attrs: Pb[] = []): Pb {
  const n = new Pb();
  for (const i of inputs) n.str(1, i);
  for (const o of outputs) n.str(2, o);
  n.str(3, name).str(4, op);
  for (const a of attrs) n.msg(5, a);
  return n;
}

export const ONNX_INPUT = "features";
export const ONNX_OUTPUT = "probabilities";

export function linearSoftmaxOnnx(m: LinearModel, docString: string): Uint8Array {
  const graph = new Pb()
    .msg(1, node("MatMul", [ONNX_INPUT, "W"], ["logits0"], "matmul"))
    .msg(1, node("Add", ["logits0", "b"], ["logits"], "add"))
    .msg(1, node("Softmax", ["logits"], [ONNX_OUTPUT], "softmax", [new Pb().str(1, "axis").int(3, -1).int(20, 2 /* INT */)]))
    .str(2, "sentiment_linear_softmax")
    .msg(5, tensor("W", [m.dim, m.classes], m.W))
    .msg(5, tensor("b", [m.classes], m.b))
    .str(10, docString)
    .msg(11, valueInfo(ONNX_INPUT, ["N", m.dim]))
    .msg(12, valueInfo(ONNX_OUTPUT, ["N", m.classes]));
  return new Pb()
    .int(1, 8) // ir_version
    .str(2, "tickflow") // producer_name
    .str(3, "1") // producer_version
    .int(5, 1) // model_version
    .msg(7, graph)
    .msg(8, new Pb().str(1, "").int(2, 13)) // opset_import: default domain, 13
    .finish();
}
