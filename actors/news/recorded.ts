// Recorded headlines (../shared/data/news format): gzip (or plain) CSV separated by ';' with a
// header `date;sentiment;source;subject;text;title;url`; `date` is D-M-YYYY HH:MM in UTC. Fields
// may be double-quoted ("" escapes a quote). The `sentiment` column is TextBlob's, not a human
// label, and is ignored. The native id is a hash of the URL (the file has no id column), so the
// same article recorded twice is one item.
import { createHash } from "node:crypto";
import { readFileSync } from "node:fs";
import { gunzipSync } from "node:zlib";
import { ErrorCode, TickflowError } from "../../protocol/errors.js";
import type { BadEntry, ParsedItem } from "./parsed-item.js";

export type RecordedHeadline = ParsedItem & { line: number };
export type RecordedFile = { file: string; items: RecordedHeadline[]; bad: BadEntry[] };

const REQUIRED = ["date", "title", "url"] as const;

/** Splits one CSV line on `sep`, honouring double quotes. */
export function splitCsvLine(line: string, sep = ";"): string[] {
  const out: string[] = [];
  let cur = "";
  let q = false;
  for (let i = 0; i < line.length; i++) {
    const c = line[i];
    if (q) {
      if (c === '"') {
        if (line[i + 1] === '"') { cur += '"'; i++; } else q = false;
      } else cur += c;
    } else if (c === '"' && cur === "") q = true;
    else if (c === sep) { out.push(cur); cur = ""; }
    else cur += c;
  }
  out.push(cur);
  return out;
}

/** `5-7-2022 04:24` (D-M-YYYY HH:MM, UTC) → ms, or NaN. */
export function parseRecordedDate(s: string): number {
  const m = /^(\d{1,2})-(\d{1,2})-(\d{4}) (\d{1,2}):(\d{2})(?::(\d{2}))?$/.exec(s.trim());
  if (!m) return NaN;
  const [d, mo, y, h, mi, se] = [m[1], m[2], m[3], m[4], m[5], m[6] ?? "0"].map(Number);
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || se > 59) return NaN;
  const t = Date.UTC(y, mo - 1, d, h, mi, se);
  return new Date(t).getUTCDate() === d ? t : NaN;
}

/** Parses a whole recorded file's text; bad lines are reported with their line number, never dropped silently. */
export function parseRecordedHeadlines(text: string, file: string): RecordedFile {
  const lines = text.split(/\r?\n/);
  const header = splitCsvLine(lines[0] ?? "").map((h) => h.trim().toLowerCase());
  const col: Record<string, number> = {};
  header.forEach((h, i) => (col[h] = i));
  for (const r of REQUIRED) {
    if (col[r] === undefined) throw new TickflowError(ErrorCode.BadNewsRecord, `${file}:1: header lacks the "${r}" column (expected date;sentiment;source;subject;text;title;url)`);
  }
  const items: RecordedHeadline[] = [];
  const bad: BadEntry[] = [];
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i];
    if (line.trim() === "") continue;
    const f = splitCsvLine(line);
    const where = `${file}:${i + 1}`;
    if (f.length !== header.length) { bad.push({ reason: `${where}: ${f.length} fields, the header has ${header.length}`, raw: line }); continue; }
    const ts = parseRecordedDate(f[col.date]);
    if (!Number.isFinite(ts)) { bad.push({ reason: `${where}: date "${f[col.date]}" is not D-M-YYYY HH:MM`, raw: line }); continue; }
    // A few recorded rows have only the summary: it stands in for the missing title.
    const body = col.text !== undefined ? f[col.text].trim() : "";
    const title = f[col.title].trim() || body;
    if (!title) { bad.push({ reason: `${where}: neither title nor text`, raw: line }); continue; }
    const url = f[col.url].trim();
    const key = url || `${ts}:${title}`;
    items.push({
      line: i + 1,
      nativeId: createHash("sha1").update(key).digest("hex").slice(0, 20),
      ts_ms: ts, title,
      body, url,
      coins_hint: [],
    });
  }
  return { file, items, bad };
}

/** Reads a recorded file (`.csv` or `.csv.gz`). */
export function readRecordedHeadlines(file: string): RecordedFile {
  let buf = readFileSync(file);
  if (buf[0] === 0x1f && buf[1] === 0x8b) buf = gunzipSync(buf);
  return parseRecordedHeadlines(buf.toString("utf8"), file);
}

/**
 * The replay order of several files: by publication time, then file order, then line (the
 * recorded file is newest first; a replay plays news as it happened).
 */
export function replayOrder(files: RecordedFile[]): RecordedHeadline[] {
  const all = files.flatMap((f, fi) => f.items.map((it) => ({ it, fi })));
  all.sort((a, b) => a.it.ts_ms - b.it.ts_ms || a.fi - b.fi || a.it.line - b.it.line);
  return all.map((x) => x.it);
}
