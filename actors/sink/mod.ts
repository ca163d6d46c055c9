// Public entry of the sink stage.
export { Sink, createPool, migrate, SINK_STAGE, type SinkSettings, type TableStats } from "./sink.js";
export { TABLES, ddl, upsertSql, type Dialect } from "./tables.js";
export { sinkPlugin, sinkCommand } from "./plugin.js";
