// A minimal Server-Sent Events client over fetch, for tests: collects events, reconnects only when told.
export type SseEvent = { id?: string; event: string; data: string };

export class SseClient {
  readonly events: SseEvent[] = [];
  private ctrl = new AbortController();
  status = 0;
  /** Set when the connection failed or the server closed it. */
  error: Error | null = null;
  done: Promise<void>;

  constructor(url: string, headers: Record<string, string> = {}) {
    this.done = (async () => {
      const res = await fetch(url, { headers: { accept: "text/event-stream", ...headers }, signal: this.ctrl.signal });
      this.status = res.status;
      if (!res.body) return;
      const dec = new TextDecoder();
      let buf = "";
      for await (const chunk of res.body) {
        buf += dec.decode(chunk as Uint8Array, { stream: true });
        let i: number;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          const block = buf.slice(0, i);
          buf = buf.slice(i + 2);
          const e: SseEvent = { event: "message", data: "" };
          let any = false;
          for (const line of block.split("\n")) {
            if (line.startsWith(":")) continue;
            const [k, ...rest] = line.split(":");
            const v = rest.join(":").replace(/^ /, "");
            if (k === "id") e.id = v;
            else if (k === "event") e.event = v;
            else if (k === "data") {
              e.data += v;
              any = true;
            }
          }
          if (any) this.events.push(e);
        }
      }
    })().catch((err) => {
      if ((err as Error).name !== "AbortError") this.error = err as Error;
    });
  }

  of(kind: string): any[] {
    return this.events.filter((e) => e.event === kind).map((e) => JSON.parse(e.data));
  }

  lastId(): string | undefined {
    return [...this.events].reverse().find((e) => e.id)?.id;
  }

  close(): void {
    this.ctrl.abort();
  }
}
