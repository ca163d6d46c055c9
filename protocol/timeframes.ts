// Candle timeframes such as 1m, 5m, 1h. Windows are aligned to the Unix epoch, as exchanges do.
import { ErrorCode, TickflowError } from "./errors.js";

const UNIT_MS: Record<string, number> = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 };

export function timeframeMs(tf: string): number {
  const m = /^([1-9][0-9]{0,4})([smhd])$/.exec(tf);
  if (!m) throw new TickflowError(ErrorCode.BadTimeframe, `timeframe "${tf}" is not a number followed by s, m, h or d (e.g. 1m, 5m, 1h)`);
  return Number(m[1]) * UNIT_MS[m[2]];
}

export function isTimeframe(tf: string): boolean {
  try {
    timeframeMs(tf);
    return true;
  } catch {
    return false;
  }
}
