// The metrics page: graphs of the per-minute history (GET /console/metrics/series) with
// uPlot (vendored), refreshed every 10 s; the totals tables follow the same data.
import uPlot from "./vendor/uplot/uPlot.esm.js";
import { PREFIX, el } from "./console.js";

const REFRESH_MS = 10_000;
const COLOURS = {
  successful: "#1a7f37", user_errors: "#9a6700", server_errors: "#c62828", throttled: "#6f42c1",
  faces: "#0b5cad", labels: "#d63384", mean: "#0b5cad", p95: "#c62828", fps: "#1a7f37",
};

// Per operation and per stream: the charts, each with its series (key in the JSON, label).
const OPERATION_CHARTS = [
  { id: "requests", title: "Requests per minute", series: [
    ["successful", "Successful"], ["user_errors", "User errors"],
    ["server_errors", "Server errors"], ["throttled", "Throttled"]] },
  { id: "detections", title: "Detected per minute", series: [
    ["faces", "Detected faces"], ["labels", "Detected labels"]] },
  { id: "response", title: "Response time (ms)", ms: true, series: [
    ["response_time_mean", "Mean", "mean"], ["response_time_p95", "p95", "p95"]] },
];
const STREAM_CHARTS = [
  { id: "fps", title: "Frames analysed per second", series: [["fps", "fps", "fps"]] },
  { id: "latency", title: "Latency, capture to published (ms)", ms: true, series: [
    ["latency_mean", "Mean", "mean"], ["latency_p95", "p95", "p95"]] },
];

const form = document.getElementById("range-form");
const opCharts = document.getElementById("operation-charts");
const streamCharts = document.getElementById("stream-charts");
const updated = document.getElementById("metrics-updated");
const plots = new Map(); // "op:DetectFaces:requests" -> uPlot
let minutes = Number(opCharts.dataset.minutes) || 60;
let timer = null;

function chartWidth(figure) {
  return Math.max(220, (figure.clientWidth || 320) - 4);
}

function plotData(times, entry, chart) {
  return [times, ...chart.series.map(([key]) => entry[key].map(
    (v) => (v == null ? null : chart.ms ? v * 1000 : v)))];
}

function format(value, chart) {
  if (value == null) return "–";
  if (chart.ms) return `${value.toFixed(0)} ms`;
  return Number.isInteger(value) ? String(value) : value.toFixed(2);
}

// uPlot joins points with lines: a value between two gaps (a lone request, the first live
// minute) would not show; draw those as dots.
function isolatedPoints(u, seriesIdx, show) {
  if (show) return null;
  const data = u.data[seriesIdx];
  const found = [];
  for (let i = 0; i < data.length; i++) {
    if (data[i] != null && data[i - 1] == null && data[i + 1] == null) found.push(i);
  }
  return found.length ? found : null;
}

function makePlot(holder, chart, label, data) {
  const figure = el("figure", { class: "chart" });
  const caption = el("figcaption", { text: `${label}: ${chart.title}` });
  const target = el("div", { role: "img", "aria-label": `${label}: ${chart.title}, per minute (the tables below give the totals)` });
  figure.append(caption, target);
  holder.querySelector(".chart-grid").append(figure);
  const options = {
    width: chartWidth(figure), height: 180,
    scales: { x: { time: true } },
    legend: { live: true },
    cursor: { drag: { x: false, y: false } },
    series: [{}, ...chart.series.map(([key, name, colour]) => ({
      label: name, stroke: COLOURS[colour || key], width: 2, spanGaps: false,
      points: { filter: isolatedPoints, fill: COLOURS[colour || key] },
      value: (u, v) => format(v, chart),
    }))],
    axes: [{}, { size: 50 }],
  };
  return new uPlot(options, data, target);
}

function section(container, kind, name) {
  const id = `${kind}-${name}`;
  let holder = container.querySelector(`[data-${kind}="${CSS.escape(name)}"]`);
  if (!holder) {
    holder = el("section", { class: "chart-group", "data-id": id, "aria-label": name });
    holder.setAttribute(`data-${kind}`, name);
    holder.append(el("h3", { text: name }), el("div", { class: "chart-grid" }));
    container.append(holder);
  }
  return holder;
}

function draw(container, kind, entries, charts, times) {
  const names = Object.keys(entries).sort();
  if (!names.length && !container.querySelector(".empty")) {
    container.append(el("p", { class: "empty",
      text: kind === "operation" ? "No requests yet." : "No streams in this process." }));
  }
  if (names.length) container.querySelector(".empty")?.remove();
  for (const name of names) {
    const holder = section(container, kind, name);
    for (const chart of charts) {
      const key = `${kind}:${name}:${chart.id}`;
      const data = plotData(times, entries[name], chart);
      const plot = plots.get(key);
      if (plot) plot.setData(data);
      else plots.set(key, makePlot(holder, chart, name, data));
    }
  }
}

const ms = (s) => (s == null ? "–" : Math.round(s * 1000).toLocaleString());
const n = (v) => Math.round(v).toLocaleString();

function fillTable(id, rows, columns, emptyText) {
  const body = document.querySelector(`#${id} tbody`);
  const fresh = document.createElement("tbody");
  for (const [name, t] of Object.entries(rows).sort(([a], [b]) => a.localeCompare(b))) {
    const tr = el("tr", {}, el("th", { scope: "row", text: name }));
    tr.setAttribute(id === "operations-totals" ? "data-operation" : "data-stream", name);
    for (const column of columns) tr.append(el("td", { text: column(t) }));
    fresh.append(tr);
  }
  if (!fresh.children.length) {
    fresh.append(el("tr", { class: "empty-row" },
      el("td", { colspan: String(columns.length + 1), text: emptyText })));
  }
  body.replaceWith(fresh);
}

function tables(totals) {
  fillTable("operations-totals", totals.operations, [
    (t) => n(t.successful), (t) => n(t.user_errors), (t) => n(t.server_errors),
    (t) => n(t.throttled), (t) => n(t.faces), (t) => n(t.labels),
    (t) => ms(t.response_time_mean), (t) => ms(t.response_time_p95),
  ], "No requests yet.");
  fillTable("streams-totals", totals.streams, [
    (t) => (t.online == null ? "–" : t.online ? "yes" : "no"), (t) => n(t.frames),
    (t) => ms(t.latency_mean), (t) => ms(t.latency_p95),
  ], "No streams in this process.");
}

async function refresh() {
  clearTimeout(timer);
  try {
    const response = await fetch(`${PREFIX}/metrics/series?minutes=${minutes}`,
      { credentials: "same-origin", headers: { Accept: "application/json" } });
    if (!response.ok) throw new Error(`${response.status} ${await response.text()}`);
    const data = await response.json();
    draw(opCharts, "operation", data.operations, OPERATION_CHARTS, data.times);
    draw(streamCharts, "stream", data.streams, STREAM_CHARTS, data.times);
    tables(data.totals);
    updated.textContent = `Updated ${new Date(data.now * 1000).toLocaleTimeString()}.`;
    updated.classList.remove("error");
  } catch (err) {
    updated.textContent = `Could not update: ${err.message}`;
    updated.classList.add("error");
  }
  timer = setTimeout(refresh, REFRESH_MS);
}

form.addEventListener("change", (event) => {
  if (event.target.name !== "minutes") return;
  minutes = Number(event.target.value);
  const url = new URL(window.location.href);
  url.searchParams.set("minutes", String(minutes));
  history.replaceState(null, "", url);
  refresh();
});
form.addEventListener("submit", (event) => { event.preventDefault(); refresh(); });
document.getElementById("range-apply").hidden = true; // the radios apply at once

new ResizeObserver(() => {
  for (const plot of plots.values()) {
    plot.setSize({ width: chartWidth(plot.root.closest("figure")), height: 180 });
  }
}).observe(document.getElementById("main"));

refresh();
