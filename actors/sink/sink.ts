// The sink: one durable JetStream consumer per table, rows upserted into PostgreSQL or RisingWave.
//
// - Batched: a batch is written when it holds `batchSize` rows or its oldest message is `batchMs`
//   old. The consumer's max_ack_pending bounds what is in memory.
// - Ack after commit: a message is acked only once its row is committed (or, if it can never be a
//   row, once its dead letter is stored). A crash before that redelivers it.
// - Idempotent: rows are keyed by the message's natural key, so a redelivery, a replay or two
//   sink replicas (which share a durable consumer, competing for messages) write the same row.
// - Database down: the batch is retried with exponential backoff, its messages kept in progress
//   (`working()`), nothing acked and nothing lost; writes resume when the database is back.
import { AckPolicy, DeliverPolicy, type ConsumerMessages, type JetStreamClient, type JetStreamManager, type JsMsg } from "@nats-io/jetstream";
import { jetstream, jetstreamManager } from "@nats-io/jetstream";
import type { NatsConnection } from "@nats-io/transport-node";
import pg from "pg";
import type { Logger } from "pino";
import { decodeMsg, encode, publishHeaders } from "../../protocol/codec.js";
import { BadInputError, ErrorCode, TickflowError } from "../../protocol/errors.js";
import { isNotFound } from "../../protocol/streams.js";
import { deadLetterOutput } from "../../supervisor/actor-cell.js";
import type { Config } from "../../supervisor/config.js";
import { backoffDelay } from "../../supervisor/supervision.js";
import { ddl, pkOf, TABLES, toRow, upsertSql, type Dialect, type TableDef } from "./tables.js";

export const SINK_STAGE = "sink";
/** Postgres allows 65535 parameters per statement. */
const MAX_PARAMS = 60_000;
const ACK_WAIT_MS = 30_000;

export type SinkSettings = Config["sink"];

export type TableStats = { table: string; rows: number; batches: number; retries: number; deadLetters: number; lastError: string | null; writing: boolean };

export function createPool(s: SinkSettings, name = "tickflow-sink"): pg.Pool {
  if (!s.databaseUrl) throw new TickflowError(ErrorCode.BadConfig, "the sink needs a database: set DATABASE_URL (postgres://user@host:port/db)");
  const pool = new pg.Pool({ connectionString: s.databaseUrl, max: TABLES.length, application_name: name, connectionTimeoutMillis: 5000 });
  // An idle connection killed by the server (restart, pg_terminate_backend) must not crash us;
  // the pool drops it and the next write opens a new one.
  pool.on("error", () => {});
  // A connection can also be killed while checked out or while closing; its 'error' event must
  // never reach the process (the statement in flight fails, and the batch is retried).
  pool.on("connect", (client) => client.on("error", () => {}));
  return pool;
}

/** Creates the schema and tables (`tickflow sink migrate`); safe to run again. */
export async function migrate(pool: pg.Pool, dialect: Dialect, schema: string): Promise<string[]> {
  const stmts = ddl(dialect, schema);
  for (const s of stmts) await pool.query(s);
  return stmts;
}

export class Sink {
  private readonly stats = new Map<string, TableStats>();
  private readonly iters: ConsumerMessages[] = [];
  private readonly loops: Promise<void>[] = [];
  private stopping = false;
  private wake = new Set<() => void>();
  private js!: JetStreamClient;
  private jsm!: JetStreamManager;

  constructor(private readonly o: { nc: NatsConnection; settings: SinkSettings; log: Logger; pool: pg.Pool; codec: Config["codec"]; tables?: string[] }) {
    for (const t of this.tables()) this.stats.set(t.name, { table: t.name, rows: 0, batches: 0, retries: 0, deadLetters: 0, lastError: null, writing: false });
  }

  private tables(): TableDef[] {
    return this.o.tables ? TABLES.filter((t) => this.o.tables!.includes(t.name)) : TABLES;
  }

  durableName(t: TableDef): string {
    return `${this.o.settings.durablePrefix}_${t.name}`;
  }

  async start(): Promise<void> {
    this.js = jetstream(this.o.nc);
    this.jsm = await jetstreamManager(this.o.nc);
    for (const t of this.tables()) {
      await this.ensureConsumer(t);
      this.loops.push(this.supervise(t));
    }
    this.o.log.info({ tables: this.tables().map((t) => t.name), dialect: this.o.settings.dialect, schema: this.o.settings.schema }, "sink started");
  }

  private async ensureConsumer(t: TableDef): Promise<void> {
    const cfg = {
      durable_name: this.durableName(t), filter_subject: t.filter, ack_policy: AckPolicy.Explicit, deliver_policy: DeliverPolicy.All,
      ack_wait: ACK_WAIT_MS * 1_000_000, max_ack_pending: Math.max(1000, this.o.settings.batchSize * 4), max_deliver: -1,
    };
    const have = await this.jsm.consumers.info(t.stream, cfg.durable_name).catch((err) => {
      if (isNotFound(err)) return null;
      throw err;
    });
    if (!have) await this.jsm.consumers.add(t.stream, cfg);
    else if (have.config.max_ack_pending !== cfg.max_ack_pending) await this.jsm.consumers.update(t.stream, cfg.durable_name, { max_ack_pending: cfg.max_ack_pending });
  }

  /** Per-table figures (rows written, batches, retries, dead letters, last error). */
  status(): TableStats[] {
    return [...this.stats.values()].map((s) => ({ ...s }));
  }

  /** Resolves when every table's consumer has nothing pending and nothing unacked (bounded runs). */
  async idle(pollMs = 100): Promise<void> {
    for (;;) {
      let busy = false;
      for (const t of this.tables()) {
        const i = await this.jsm.consumers.info(t.stream, this.durableName(t));
        if (i.num_pending > 0 || i.num_ack_pending > 0) busy = true;
      }
      if (!busy) return;
      await new Promise((r) => setTimeout(r, pollMs));
    }
  }

  /** Stops fetching and waits for the batch being written (unacked ones are redelivered later). */
  async stop(): Promise<void> {
    this.stopping = true;
    for (const it of this.iters) it.stop();
    for (const w of this.wake) w();
    await Promise.allSettled(this.loops);
  }

  /** Consumes a table's durable consumer until stop(); if consuming ends for another reason (the consumer was deleted, NATS went away for long), starts again. */
  private async supervise(t: TableDef): Promise<void> {
    for (let attempt = 0; !this.stopping; attempt++) {
      try {
        if (attempt > 0) await this.ensureConsumer(t);
        const consumer = await this.js.consumers.get(t.stream, this.durableName(t));
        const iter = await consumer.consume({ max_messages: Math.min(this.o.settings.batchSize * 2, 10_000) });
        this.iters.push(iter);
        if (this.stopping) iter.stop();
        await this.run(t, iter);
        if (this.stopping) return;
        this.o.log.warn({ table: t.name }, "sink: consuming ended; starting again");
      } catch (err) {
        if (this.stopping) return;
        this.o.log.warn({ table: t.name, err: (err as Error).message }, "sink: consumer failed; starting again");
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(done, backoffDelay(attempt + 1, 200, 10_000));
        function done() {
          clearTimeout(timer);
          resolve();
        }
        this.wake.add(done);
      });
    }
  }

  private async run(t: TableDef, iter: ConsumerMessages): Promise<void> {
    const { batchSize, batchMs } = this.o.settings;
    let buf: JsMsg[] = [];
    let oldest = 0;
    let chain: Promise<void> = Promise.resolve();
    const flush = (): Promise<void> => {
      if (buf.length === 0) return chain;
      const batch = buf;
      buf = [];
      // A batch that fails unexpectedly is logged and left unacked (redelivered after ack_wait);
      // the chain itself never stays rejected, or no later batch would be written.
      chain = chain.then(() => this.writeBatch(t, batch)).catch((err) => {
        this.o.log.error({ table: t.name, err: (err as Error).message }, "sink: batch failed; its messages will be redelivered");
      });
      return chain;
    };
    // Time-based flush; a write in progress delays the next one (chain), never races it.
    const timer = setInterval(() => {
      if (buf.length && Date.now() - oldest >= batchMs) flush().catch(() => {});
    }, Math.max(10, Math.floor(batchMs / 2)));
    try {
      for await (const m of iter) {
        if (this.stopping) break;
        if (buf.length === 0) oldest = Date.now();
        buf.push(m);
        if (buf.length >= batchSize) await flush();
      }
    } finally {
      clearInterval(timer);
      // What was fetched but not written is not acked: the server redelivers it after ack_wait.
      await chain.catch(() => {});
    }
  }

  private async writeBatch(t: TableDef, msgs: JsMsg[]): Promise<void> {
    const st = this.stats.get(t.name)!;
    const rows = new Map<string, unknown[]>();
    const good: JsMsg[] = [];
    for (const m of msgs) {
      try {
        const row = toRow(t, decodeMsg(m), m.seq, `${m.subject}#${m.seq}`);
        rows.set(pkOf(t, row), row); // a repeated key in one batch: one row (the statement must not touch it twice)
        good.push(m);
      } catch (err) {
        if (!(err instanceof BadInputError) && !(err instanceof TickflowError && err.code === ErrorCode.BadCodec)) throw err;
        await this.deadLetter(t, m, (err as Error).message);
        st.deadLetters++;
      }
    }
    if (rows.size === 0) return;
    const list = [...rows.values()];
    st.writing = true;
    for (let attempt = 0; ; attempt++) {
      if (this.stopping) {
        st.writing = false;
        return; // not acked: redelivered to whoever runs the sink next
      }
      try {
        await this.write(t, list);
        break;
      } catch (err) {
        st.retries++;
        st.lastError = (err as Error).message;
        const delay = backoffDelay(attempt + 1, 100, 5000);
        this.o.log.warn({ table: t.name, rows: list.length, attempt: attempt + 1, delayMs: delay, err: st.lastError }, "sink: write failed; retrying (nothing acked)");
        for (const m of good) m.working();
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, delay);
          function done() {
            clearTimeout(timer);
            resolve();
          }
          this.wake.add(done);
        });
      }
    }
    st.writing = false;
    for (const m of good) m.ack();
    st.rows += list.length;
    st.batches++;
    st.lastError = null;
  }

  private async write(t: TableDef, rows: unknown[][]): Promise<void> {
    const { dialect, schema } = this.o.settings;
    const width = t.cols.length + 1;
    const per = Math.max(1, Math.floor(MAX_PARAMS / width));
    const client = await this.o.pool.connect();
    let broken: Error | undefined;
    // A connection killed between two statements reports on the client, not on a query: note it
    // (the next statement fails and the batch is retried) instead of crashing the process.
    const onError = (err: Error) => (broken ??= err);
    client.on("error", onError);
    try {
      if (dialect === "postgres") await client.query("BEGIN");
      for (let i = 0; i < rows.length; i += per) {
        const chunk = rows.slice(i, i + per);
        await client.query(upsertSql(dialect, schema, t, chunk.length), chunk.flat());
      }
      // RisingWave makes inserts durable at its next checkpoint; FLUSH waits for that, so an ack
      // after it means the row survives a RisingWave restart.
      if (dialect === "postgres") await client.query("COMMIT");
      else await client.query("FLUSH");
    } catch (err) {
      broken = err as Error;
      if (dialect === "postgres") await client.query("ROLLBACK").catch(() => {});
      const code = (err as { code?: string }).code;
      // Undefined table/column: retrying cannot help until someone runs `tickflow sink migrate`; say so.
      if (code === "42P01" || code === "42703" || code === "3F000") {
        throw new TickflowError(ErrorCode.SinkSchema, `${(err as Error).message} — run \`tickflow sink migrate\` (schema "${schema}", dialect ${dialect})`, { cause: err });
      }
      throw err;
    } finally {
      // A connection that failed mid-statement is not reused.
      client.off("error", onError);
      client.release(broken ?? undefined);
    }
  }

  private async deadLetter(t: TableDef, m: JsMsg, reason: string): Promise<void> {
    const pair = /([A-Z0-9]{1,16})-([A-Z0-9]{1,16})$/.exec(m.subject);
    const out = deadLetterOutput(SINK_STAGE, pair ? `${pair[1]}/${pair[2]}` : "UNKNOWN/UNKNOWN", `${t.name}: ${reason}`, m.subject, m.seq, m.data);
    // Sequences are per stream: the table names the stream, so the id is unique.
    await this.js.publish(out.subject, encode(out.data, this.o.codec), { msgID: `dlq:sink:${t.name}:${m.seq}`, headers: publishHeaders(this.o.codec) });
    m.ack();
  }
}
