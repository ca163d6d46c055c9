// Tickflow dashboard: plain ES module, no build step. Data from the gateway's REST routes, then
// live over Server-Sent Events (/v1/stream), which resumes by itself after a disconnect.
import { createChart, CandlestickSeries, LineSeries, HistogramSeries } from "/vendor/lightweight-charts.mjs";

const $ = (id) => document.getElementById(id);
const state = { pair: null, tf: "1m", candles: new Map(), predictions: new Map(), es: null, horizon: null };
// Exposed for tests and curious users: what the page has drawn.
window.tickflow = state;

const chart = createChart($("chart"), {
  layout: { background: { color: "#0f1419" }, textColor: "#d8dee6", panes: { separatorColor: "#2a3442" } },
  grid: { vertLines: { color: "#1b232d" }, horzLines: { color: "#1b232d" } },
  timeScale: { timeVisible: true, secondsVisible: false },
  autoSize: true,
});
const candleSeries = chart.addSeries(CandlestickSeries, { upColor: "#26a69a", downColor: "#ef5350", borderVisible: false, wickUpColor: "#26a69a", wickDownColor: "#ef5350" });
const predSeries = chart.addSeries(LineSeries, { color: "#f5c542", lineWidth: 2, lineStyle: 2, pointMarkersVisible: true, title: "predicted" });
const smaSeries = chart.addSeries(LineSeries, { color: "#7ab7ff", lineWidth: 1, priceLineVisible: false, lastValueVisible: false });
const bbUp = chart.addSeries(LineSeries, { color: "#8e7cc3", lineWidth: 1, priceLineVisible: false, lastValueVisible: false });
const bbLo = chart.addSeries(LineSeries, { color: "#8e7cc3", lineWidth: 1, priceLineVisible: false, lastValueVisible: false });
const rsiSeries = chart.addSeries(LineSeries, { color: "#e07b39", lineWidth: 1, title: "RSI 14" }, 1);
const macdSeries = chart.addSeries(HistogramSeries, { color: "#7ab7ff", title: "MACD hist" }, 2);
// Price pane on top, two indicator panes below it at a fifth of its height each.
chart.panes()[0]?.setStretchFactor(0.6);
chart.panes()[1]?.setStretchFactor(0.2);
chart.panes()[2]?.setStretchFactor(0.2);

const sec = (ms) => Math.floor(ms / 1000);
const fmt = (x, d = 2) => (x === null || x === undefined || !Number.isFinite(x) ? "–" : Number(x).toLocaleString(undefined, { maximumFractionDigits: d, minimumFractionDigits: d }));
const token = (pair) => pair.replace("/", "-");
// Names come from the cluster (member ids are free text): escape before they go into HTML.
const esc = (v) => String(v ?? "–").replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

async function getJson(url) {
  const r = await fetch(url);
  if (r.status === 404) return null;
  if (!r.ok) throw new Error(`${url}: ${r.status} ${(await r.json().catch(() => ({}))).message ?? ""}`);
  return r.json();
}

function addCandle(c) {
  if (c.tf !== state.tf) return;
  state.candles.set(c.window_start_ms, c);
  candleSeries.update({ time: sec(c.window_start_ms), open: c.open, high: c.high, low: c.low, close: c.close });
  $("chart").dataset.candles = String(state.candles.size);
  $("last").textContent = fmt(c.close);
  $("last-time").textContent = `${c.tf} candle of ${new Date(c.window_start_ms).toISOString().slice(0, 16).replace("T", " ")} UTC`;
}

function addIndicators(x) {
  if (x.tf !== state.tf) return;
  const t = sec(x.window_start_ms);
  const v = x.values ?? {};
  if (v.sma_7 != null) smaSeries.update({ time: t, value: v.sma_7 });
  if (v.bb_upper != null) bbUp.update({ time: t, value: v.bb_upper });
  if (v.bb_lower != null) bbLo.update({ time: t, value: v.bb_lower });
  if (v.rsi_14 != null) rsiSeries.update({ time: t, value: v.rsi_14 });
  if (v.macd_hist != null) macdSeries.update({ time: t, value: v.macd_hist, color: v.macd_hist >= 0 ? "#26a69a" : "#ef5350" });
}

function addPrediction(p) {
  // Drawn at the time it predicts, on the candle grid, so it lines up with the actual close there.
  const tfMs = tfToMs(state.tf);
  const t = Math.floor(p.target_ts_ms / tfMs) * tfMs;
  const last = [...state.predictions.keys()].pop();
  if (last !== undefined && t < last) return;
  state.predictions.set(t, p);
  predSeries.update({ time: sec(t), value: p.predicted_price });
  $("chart").dataset.predictions = String(state.predictions.size);
  $("pred").textContent = fmt(p.predicted_price);
  $("pred-detail").textContent = `${p.horizon_s / 60} min ahead from ${fmt(p.base_price)} (${(p.predicted_return * 100).toFixed(3)} %) · ${p.model} ${p.model_version ?? ""}`;
}

function showSentiment(s) {
  $("sent").textContent = s.score.toFixed(2);
  $("sent").style.color = s.score > 0.05 ? "#26a69a" : s.score < -0.05 ? "#ef5350" : "";
  $("sent-detail").textContent = `${s.items} items, half-life ${Math.round(s.half_life_s / 60)} min · ${new Date(s.ts_ms).toISOString().slice(0, 16).replace("T", " ")}`;
}

function tfToMs(tf) {
  const n = parseInt(tf, 10);
  return n * { s: 1e3, m: 6e4, h: 36e5, d: 864e5 }[tf.slice(-1)];
}

async function loadAccuracy() {
  const a = await getJson(`/v1/accuracy/${token(state.pair)}`).catch(() => null);
  if (!a) return;
  $("acc-mae").textContent = fmt(a.mae, 3);
  $("acc-base").textContent = fmt(a.mae_persistence, 3);
  $("acc-skill").textContent = a.skill === null ? "–" : `${(a.skill * 100).toFixed(1)} %`;
  $("acc-skill").style.color = a.skill === null ? "" : a.skill > 0 ? "#26a69a" : "#ef5350";
  $("acc-dir").textContent = a.direction_hit_rate === null ? "–" : `${(a.direction_hit_rate * 100).toFixed(1)} %`;
  $("acc-n").textContent = String(a.n);
  const m = await getJson(`/v1/models/${token(state.pair)}`).catch(() => null);
  $("model").textContent = a.models.length ? `model ${a.models.join(", ")}` : m && m.models.length ? `${m.models.length} registry record(s)` : "no model registered yet";
}

// The selected pair's actors and, first, up to 50 that need a look; every stage counted above the
// table. At a thousand pairs the whole list is six thousand rows and megabytes every 5 s.
async function loadActors() {
  const [mine, bad] = await Promise.all([
    getJson(`/v1/actors?pair=${token(state.pair)}`).catch(() => null),
    getJson("/v1/actors?problems=true&limit=50").catch(() => null),
  ]);
  if (!mine) return;
  $("members").textContent = `· ${mine.members.length} member(s)`;
  $("actor-summary").textContent = Object.entries(mine.summary ?? {}).map(([stage, c]) => {
    const states = Object.entries(c.states).sort((x, y) => y[1] - x[1]).map(([st, n]) => `${n} ${st}`).join(", ");
    const extra = [c.restarts ? `${c.restarts} restarts` : "", c.deadLetters ? `${c.deadLetters} dead letters` : ""].filter(Boolean).join(", ");
    return `${stage}: ${states}${extra ? ` (${extra})` : ""}`;
  }).join(" · ");
  const row = (a) => `<tr><td>${esc(a.stage)}</td><td>${esc(a.pair ?? a.key)}</td><td class="state-${esc(a.state)}">${esc(a.state)}</td><td>${esc(a.owner)}</td><td>${esc(a.lastSeq)}</td><td>${esc(a.lag)}</td><td>${esc(a.restarts)}</td><td>${esc(a.deadLetters)}</td></tr>`;
  const rows = [...(bad?.actors ?? []).filter((a) => a.pair !== state.pair).map(row), ...mine.actors.map(row)];
  if (bad && bad.total > bad.actors.length) rows.push(`<tr><td colspan="8" class="muted">and ${bad.total - bad.actors.length} more that need a look: tickflow status --problems</td></tr>`);
  document.querySelector("#actors tbody").innerHTML = rows.join("");
}

async function loadPair() {
  state.candles.clear();
  state.predictions.clear();
  const t = token(state.pair);
  const [c, ind, ph, sent] = await Promise.all([
    getJson(`/v1/candles/${t}?tf=${state.tf}&limit=300`),
    getJson(`/v1/indicators/${t}?tf=${state.tf}&limit=300`),
    getJson(`/v1/predictions/${t}/history?limit=300`),
    getJson(`/v1/sentiment/${t}`),
  ]);
  for (const s of [candleSeries, predSeries, smaSeries, bbUp, bbLo, rsiSeries, macdSeries]) s.setData([]);
  for (const x of c?.candles ?? []) addCandle(x);
  for (const x of ind?.indicators ?? []) addIndicators(x);
  for (const p of ph?.predictions ?? []) addPrediction(p);
  if (sent) showSentiment(sent.sentiment);
  chart.timeScale().fitContent();
  connect();
  loadAccuracy();
}

function connect() {
  state.es?.close();
  const es = new EventSource(`/v1/stream?pairs=${token(state.pair)}`);
  state.es = es;
  es.onopen = () => { $("live").textContent = "live"; $("live").className = "badge ok"; };
  es.onerror = () => { $("live").textContent = "reconnecting…"; $("live").className = "badge err"; };
  es.addEventListener("candle", (e) => addCandle(JSON.parse(e.data)));
  es.addEventListener("indicators", (e) => addIndicators(JSON.parse(e.data)));
  es.addEventListener("prediction", (e) => addPrediction(JSON.parse(e.data)));
  es.addEventListener("sentiment", (e) => showSentiment(JSON.parse(e.data)));
  es.addEventListener("outcome", () => loadAccuracy());
  es.addEventListener("reset", () => loadPair());
}

async function main() {
  const { pairs } = await getJson("/v1/pairs");
  const sel = $("pair");
  sel.innerHTML = pairs.map((p) => `<option value="${esc(p.pair)}">${esc(p.pair)}</option>`).join("");
  const fromUrl = new URLSearchParams(location.search).get("pair");
  state.pair = pairs.find((p) => p.pair === fromUrl || p.token === fromUrl)?.pair ?? pairs[0]?.pair ?? null;
  if (!state.pair) { $("live").textContent = "no pairs yet"; return; }
  sel.value = state.pair;
  sel.onchange = () => { state.pair = sel.value; loadPair(); loadActors(); };
  $("tf").onchange = () => { state.tf = $("tf").value; loadPair(); };
  await loadPair();
  loadActors();
  setInterval(loadActors, 5000);
}

main().catch((err) => { $("live").textContent = `error: ${err.message}`; $("live").className = "badge err"; });
