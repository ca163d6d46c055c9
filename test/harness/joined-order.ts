// The oracle's input for a joined-input actor: the order it applied its inputs in, rebuilt from
// what the streams hold, independently of the runtime's reader. The main input is its stream's
// messages on its subject, in stream order; each journal entry goes after the main message its
// `Tf-After` names (or after the entries before it, if those went later: an owner applies an entry
// it reads back where it stands, never earlier). Fence entries are skipped.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { InputMsg } from "../../supervisor/actor.js";
import { FENCE, HDR_AFTER, HDR_INPUT, JOURNAL_STREAM, journalInput, journalSubject } from "../../supervisor/journal.js";
import { HeaderedInput } from "../../supervisor/actor.js";
import { decode, HDR_CONTENT_TYPE } from "../../protocol/codec.js";
import { readHeaders } from "../../protocol/wire-headers.js";
import { readMsgs } from "./nats.js";

/** The journal's entries of `stage`/`key` (fences left out), with the main-input sequence each went after. */
export async function journalEntries(js: JetStreamClient, stage: string, key: string): Promise<{ msg: InputMsg; after: number; journalSeq: number }[]> {
  const out: { msg: InputMsg; after: number; journalSeq: number }[] = [];
  for (const m of await readMsgs(js, JOURNAL_STREAM, journalSubject(stage, key))) {
    const h = readHeaders(m);
    if (h.get(HDR_INPUT) === FENCE) continue;
    out.push({ msg: journalInput(m), after: Number(h.get(HDR_AFTER)), journalSeq: m.seq });
  }
  return out;
}

/** Every input message of the actor in the order it applied them. */
export async function joinedOrder(js: JetStreamClient, o: { stage: string; key: string; main: { name: string; stream: string; subject: string } }): Promise<InputMsg[]> {
  const mains = (await readMsgs(js, o.main.stream, o.main.subject)).map((m) => {
    const h = readHeaders(m);
    const data = m.data.length === 0 ? undefined : decode(m.data, h.get(HDR_CONTENT_TYPE) || null);
    return new HeaderedInput(o.main.name, m.subject, m.seq, data, m.data.slice(), h) as InputMsg;
  });
  const entries = await journalEntries(js, o.stage, o.key);
  const out: InputMsg[] = [];
  let e = 0;
  let at = 0;
  for (const m of mains) {
    for (; e < entries.length && Math.max(entries[e].after, at) < m.seq; e++) {
      at = Math.max(entries[e].after, at);
      out.push(entries[e].msg);
    }
    out.push(m);
  }
  for (; e < entries.length; e++) out.push(entries[e].msg);
  return out;
}
