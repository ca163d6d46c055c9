// ONNX export of the fitted models, written with a small protobuf encoder (only the fields of
// onnx.proto we use; field numbers from onnx/onnx.proto). The graphs take one input `x`, float32
// [N, F] in the model's feature order, and give `y`, float32 [N, 1], the predicted log return.
//  - ridge: y = ((x − mean) / std) · w + b   (Sub, Div, MatMul, Add)
//  - gbt:   ai.onnx.ml TreeEnsembleRegressor, BRANCH_LEQ nodes, SUM of trees + base value
import type { FittedModel, LinearModel, TreeModel } from "./models.js";

const IR_VERSION = 8;
const OPSET = 13;
const ML_OPSET = 3;
const FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR = { FLOAT: 1, INT: 2, STRING: 3, FLOATS: 6, INTS: 7, STRINGS: 8 } as const;

/** A protobuf message under construction: fields appended in order. */
class Pb {
  private chunks: number[] = [];

  private varint(v: number | bigint): void {
    let x = BigInt.asUintN(64, BigInt(v));
    while (x >= 0x80n) {
      this.chunks.push(Number(x & 0x7fn) | 0x80);
      x >>= 7n;
    }
    this.chunks.push(Number(x));
  }
  private key(field: number, wire: number): void {
    this.varint((field << 3) | wire);
  }
  int(field: number, v: number): this {
    this.key(field, 0);
    this.varint(v);
    return this;
  }
  bytes(field: number, b: Uint8Array): this {
    this.key(field, 2);
    this.varint(b.length);
    for (const x of b) this.chunks.push(x);
    return this;
  }
  str(field: number, s: string): this {
    return this.bytes(field, new TextEncoder().encode(s));
  }
  msg(field: number, m: Pb): this {
    return this.bytes(field, m.finish());
  }
  float(field: number, v: number): this {
    this.key(field, 5);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, v, true);
    for (const x of b) this.chunks.push(x);
    return this;
  }
  packedFloats(field: number, vs: number[]): this {
    const b = new Uint8Array(vs.length * 4);
    const dv = new DataView(b.buffer);
    vs.forEach((v, i) => dv.setFloat32(i * 4, v, true));
    return this.bytes(field, b);
  }
  packedInts(field: number, vs: number[]): this {
    const p = new Pb();
    for (const v of vs) p.varint(v);
    return this.bytes(field, p.finish());
  }
  finish(): Uint8Array {
    return Uint8Array.from(this.chunks);
  }
}

type Attr = { name: string } & ({ i: number } | { f: number } | { s: string } | { ints: number[] } | { floats: number[] } | { strings: string[] });

function attribute(a: Attr): Pb {
  // AttributeProto: name 1, f 2, i 3, s 4, floats 7, ints 8, strings 9, type 20.
  const p = new Pb().str(1, a.name);
  if ("i" in a) return p.int(3, a.i).int(20, ATTR.INT);
  if ("f" in a) return p.float(2, a.f).int(20, ATTR.FLOAT);
  if ("s" in a) return p.str(4, a.s).int(20, ATTR.STRING);
  if ("ints" in a) return p.packedInts(8, a.ints).int(20, ATTR.INTS);
  if ("floats" in a) return p.packedFloats(7, a.floats).int(20, ATTR.FLOATS);
  for (const s of a.strings) p.str(9, s);
  return p.int(20, ATTR.STRINGS);
}

function node(op: string, inputs: string[], outputs: string[], opts: { domain?: string; attrs?: Attr[]; name?: string } = {}): Pb {
  // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7.
  const p = new Pb();
  for (const i of inputs) p.str(1, i);
  for (const o of outputs) p.str(2, o);
  p.str(3, opts.name ?? `${op}_${outputs[0]}`).str(4, op);
  for (const a of opts.attrs ?? []) p.msg(5, attribute(a));
  if (opts.domain) p.str(7, opts.domain);
  return p;
}

function tensor(name: string, dims: number[], values: number[]): Pb {
  // TensorProto: dims 1, data_type 2, float_data 4 (packed), name 8.
  const p = new Pb();
  for (const d of dims) p.int(1, d);
  return p.int(2, FLOAT).packedFloats(4, values).str(8, name);
}

function valueInfo(name: string, dims: (number | string)[]): Pb {
  // ValueInfoProto{name 1, type 2}; TypeProto{tensor_type 1}; Tensor{elem_type 1, shape 2}; Shape{dim 1}; Dim{dim_value 1, dim_param 2}.
  const shape = new Pb();
  for (const d of dims) shape.msg(1, typeof d === "number" ? new Pb().int(1, d) : new Pb().str(2, d));
  const tt = new Pb().int(1, FLOAT).msg(2, shape);
  return new Pb().str(1, name).msg(2, new Pb().msg(1, tt));
}

function modelProto(graph: Pb, doc: string, features: string[]): Uint8Array {
  // ModelProto: ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8, metadata_props 14.
  const m = new Pb().int(1, IR_VERSION).str(2, "tickflow").str(3, "1").str(6, doc).msg(7, graph);
  m.msg(8, new Pb().str(1, "").int(2, OPSET));
  m.msg(8, new Pb().str(1, "ai.onnx.ml").int(2, ML_OPSET));
  m.msg(14, new Pb().str(1, "features").str(2, features.join(",")));
  return m.finish();
}

function graph(name: string, nodes: Pb[], inits: Pb[], f: number): Pb {
  // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
  const g = new Pb();
  for (const n of nodes) g.msg(1, n);
  g.str(2, name);
  for (const t of inits) g.msg(5, t);
  g.msg(11, valueInfo("x", ["N", f]));
  g.msg(12, valueInfo("y", ["N", 1]));
  return g;
}

export function linearToOnnx(m: LinearModel, features: string[]): Uint8Array {
  const f = features.length;
  const g = graph("tickflow_ridge", [
    node("Sub", ["x", "mean"], ["centered"]),
    node("Div", ["centered", "std"], ["z"]),
    node("MatMul", ["z", "w"], ["zw"]),
    node("Add", ["zw", "b"], ["y"]),
  ], [tensor("mean", [f], m.mean), tensor("std", [f], m.std), tensor("w", [f, 1], m.weights), tensor("b", [1], [m.bias])], f);
  return modelProto(g, "ridge regression on standardized features; output: predicted log return", features);
}

export function treesToOnnx(m: TreeModel, features: string[]): Uint8Array {
  const n = { treeIds: [] as number[], nodeIds: [] as number[], featureIds: [] as number[], values: [] as number[], modes: [] as string[], trueIds: [] as number[], falseIds: [] as number[] };
  const t = { treeIds: [] as number[], nodeIds: [] as number[], ids: [] as number[], weights: [] as number[] };
  m.trees.forEach((tree, ti) => {
    tree.forEach((nd, ni) => {
      n.treeIds.push(ti);
      n.nodeIds.push(ni);
      if ("leaf" in nd) {
        n.featureIds.push(0); n.values.push(0); n.modes.push("LEAF"); n.trueIds.push(0); n.falseIds.push(0);
        t.treeIds.push(ti); t.nodeIds.push(ni); t.ids.push(0); t.weights.push(nd.leaf);
      } else {
        n.featureIds.push(nd.feature); n.values.push(nd.threshold); n.modes.push("BRANCH_LEQ"); n.trueIds.push(nd.left); n.falseIds.push(nd.right);
      }
    });
  });
  const ens = node("TreeEnsembleRegressor", ["x"], ["y"], {
    domain: "ai.onnx.ml",
    attrs: [
      { name: "n_targets", i: 1 },
      { name: "aggregate_function", s: "SUM" },
      { name: "post_transform", s: "NONE" },
      { name: "base_values", floats: [m.base] },
      { name: "nodes_treeids", ints: n.treeIds },
      { name: "nodes_nodeids", ints: n.nodeIds },
      { name: "nodes_featureids", ints: n.featureIds },
      { name: "nodes_values", floats: n.values },
      { name: "nodes_modes", strings: n.modes },
      { name: "nodes_truenodeids", ints: n.trueIds },
      { name: "nodes_falsenodeids", ints: n.falseIds },
      { name: "target_treeids", ints: t.treeIds },
      { name: "target_nodeids", ints: t.nodeIds },
      { name: "target_ids", ints: t.ids },
      { name: "target_weights", floats: t.weights },
    ],
  });
  return modelProto(graph("tickflow_gbt", [ens], [], features.length), "gradient-boosted regression trees; output: predicted log return", features);
}

/** The ONNX bytes of a fitted model (persistence has none: it is no model, it serves without one). */
export function toOnnx(m: FittedModel, features: string[]): Uint8Array {
  if (m.kind === "ridge") return linearToOnnx(m, features);
  if (m.kind === "gbt") return treesToOnnx(m, features);
  throw new RangeError("persistence has no ONNX graph: it predicts a zero return without a model");
}
