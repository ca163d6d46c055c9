// One decoded byte range remembered, for values that repeat from message to message (a header's
// value, the stream named in an ack): the next range with the same bytes gets the same string
// back without decoding or allocating.

export class LastDecoded {
  private bytes = new Uint8Array(0);
  private text = "";

  constructor(private readonly decode: (bytes: Uint8Array) => string) {}

  /** The string of `b[from, to)`: the remembered one if the bytes are the same, else decoded (and remembered). */
  of(b: Uint8Array, from: number, to: number): string {
    const n = to - from;
    if (n === this.bytes.length) {
      let same = true;
      for (let j = 0; same && j < n; j++) same = b[from + j] === this.bytes[j];
      if (same) return this.text;
    }
    this.bytes = b.slice(from, to);
    this.text = this.decode(this.bytes);
    return this.text;
  }
}
