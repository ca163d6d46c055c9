// `tickflow up --news … --once`: the news side is drained when the replay source has published its
// last item and the scorer pool's shared consumer has nothing pending or unacked. The sentiment
// actors are stream actors: the runtime's settle() waits for them afterwards.
import type { JetStreamClient } from "@nats-io/jetstream";
import type { Supervisor } from "../../supervisor/runtime.js";
import { poolConsumerName } from "../../supervisor/pool-cell.js";
import { NEWS_STAGE } from "../news/actor.js";
import { REPLAY_SOURCE } from "../news/replay.js";
import { SCORER_STAGE } from "../scorer/actor.js";

export async function waitNewsDrained(sup: Supervisor, js: JetStreamClient, items: number, pollMs = 200): Promise<void> {
  const jsm = await js.jetstreamManager(false);
  for (;;) {
    const replay = sup.status().find((a) => a.stage === NEWS_STAGE && a.key === REPLAY_SOURCE);
    const done = replay?.detail?.done === true || (replay?.detail?.position as number | undefined) === items;
    if (done) {
      if (!sup.status().some((a) => a.stage === SCORER_STAGE)) return; // the scorers run elsewhere
      const c = await jsm.consumers.info("NEWS", poolConsumerName(SCORER_STAGE)).catch(() => null);
      if (c && c.num_pending === 0 && c.num_ack_pending === 0) return;
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}
