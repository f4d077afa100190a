// mlplab dashboard, a sweep's insight: the importance bars and an interactive parallel-
// coordinates SVG (drag along an axis to keep only the runs inside; drag again elsewhere on
// it to move the range, click it to clear; hover a line for its configuration).
// Data from GET /v1/sweeps/{id}/importance and /parallel; hand-drawn, no library.
// One closure: the page's other scripts share the global scope (chart.js has its own SVG_NS).
(() => {
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const PC = { width: 800, height: 300, top: 24, bottom: 40, left: 50, right: 90 };
const insight = { sweepId: null, finished: -1, data: null, brushes: {}, drag: null };

function svgEl(tag, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== null) node.textContent = text;
  return node;
}

// Called by dashboard.js with each fresh sweep record; refetches only when more runs finished.
async function renderInsight(meta, fetchJson) {
  const box = document.getElementById("insight-box");
  const finished = (meta.counts && meta.counts.succeeded) || 0;
  if (insight.sweepId !== meta.id) {
    Object.assign(insight, { sweepId: meta.id, finished: -1, data: null, brushes: {} });
  }
  if (finished === insight.finished) return;
  insight.finished = finished;
  if (!finished) { box.hidden = true; return; }
  box.hidden = false;
  try {
    insight.data = await fetchJson(`/v1/sweeps/${meta.id}/parallel`);
    drawParallel();
  } catch (err) {
    document.getElementById("parallel-note").textContent = err.message;
  }
  try {
    const needs = insight.data ? insight.data.importance_needs : 0;
    if (finished < needs) throw new Error(`importance needs ${needs} finished runs; ${finished} so far`);
    renderImportance(await fetchJson(`/v1/sweeps/${meta.id}/importance`));
  } catch (err) {  // too few finished runs (the server's 409 says so too)
    document.getElementById("importance").replaceChildren();
    document.getElementById("importance-note").textContent = err.message;
  }
}

function hideInsight() {
  insight.sweepId = null;
  document.getElementById("insight-box").hidden = true;
}

function renderImportance(body) {
  const items = Object.entries(body.importance).map(([field, value]) => {
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(value * 100)}%`;  // CSSOM: the CSP refuses style=""
    const li = document.createElement("li");
    li.dataset.field = field;
    li.append(Object.assign(document.createElement("span"), { className: "field", textContent: field }),
      bar, Object.assign(document.createElement("span"), { className: "num", textContent: value.toFixed(3) }));
    return li;
  });
  document.getElementById("importance").replaceChildren(...items);
  document.getElementById("importance-note").textContent =
    `${body.evaluator} over ${body.finished} finished runs, for ${body.metric}`;
}

// ---- parallel coordinates ----------------------------------------------------------------

const axisX = (i, n) => PC.left + (i * (PC.width - PC.left - PC.right)) / Math.max(n - 1, 1);
const posY = (p) => PC.top + (1 - p) * (PC.height - PC.top - PC.bottom);
const yPos = (y) => 1 - (y - PC.top) / (PC.height - PC.top - PC.bottom);

// Every run's positions, the metric as a last axis scaled over the runs shown.
function lines() {
  const data = insight.data;
  const values = data.runs.map((r) => r.metric);
  const lo = Math.min(...values), hi = Math.max(...values);
  return data.runs.map((run) => ({
    run,
    ys: [...data.axes.map((a) => run.values[a.field]), hi > lo ? (run.metric - lo) / (hi - lo) : 0.5],
  }));
}

function axisNames() {
  return [...insight.data.axes.map((a) => a.field), insight.data.metric];
}

function kept(ys) {
  return axisNames().every((name, i) => {
    const range = insight.brushes[name];
    return !range || (ys[i] !== null && ys[i] >= range[0] && ys[i] <= range[1]);
  });
}

function colour(t, good) {  // t in 0..1 along the metric axis; bright green is good
  const g = good === "min" ? 1 - t : t;
  return `hsl(${Math.round(220 - 100 * g)}, 70%, ${Math.round(35 + 20 * g)}%)`;
}

function drawParallel() {
  const svg = document.getElementById("parallel");
  const names = axisNames(), n = names.length, data = insight.data;
  const nodes = [];
  let shown = 0;
  for (const { run, ys } of lines()) {
    const points = ys.map((y, i) => `${axisX(i, n).toFixed(1)},${posY(y ?? 0).toFixed(1)}`).join(" ");
    const on = kept(ys);
    shown += on ? 1 : 0;
    const line = svgEl("polyline", {
      points, class: `pc-line${run.best ? " best" : ""}${on ? "" : " filtered"}`,
      stroke: run.best ? "#d62728" : colour(ys[n - 1], data.mode), "data-run": run.run_id,
    });
    line.addEventListener("mouseenter", () => showRun(run));
    nodes.push(line);
  }
  nodes.sort((a, b) => a.classList.contains("best") - b.classList.contains("best"));
  names.forEach((name, i) => nodes.push(...axisNodes(name, i, n)));
  svg.replaceChildren(...nodes);
  document.getElementById("parallel-note").textContent =
    `${shown} of ${data.runs.length} finished runs shown · drag along an axis to filter · best in red`;
}

function axisNodes(name, i, n) {
  const x = axisX(i, n), axis = insight.data.axes[i];
  const out = [svgEl("line", { x1: x, x2: x, y1: posY(0), y2: posY(1), class: "pc-axis" }),
    svgEl("text", { x, y: PC.height - 12, "text-anchor": "middle", class: "pc-name" }, name)];
  const ticks = !axis ? [[0, "worst"], [1, "best"]].map(([p, t]) => [insight.data.mode === "min" ? 1 - p : p, t])
    : axis.kind === "categorical" ? axis.labels.map((l, k) => [k / Math.max(axis.labels.length - 1, 1), l])
      : [[0, `${+axis.low.toPrecision(3)}`], [1, `${+axis.high.toPrecision(3)}`]];
  for (const [p, label] of ticks) {
    out.push(svgEl("text", { x: x + 5, y: posY(p) + 4, class: "pc-tick" }, String(label).slice(0, 18)));
  }
  const range = insight.brushes[name];
  if (range) {
    out.push(svgEl("rect", { x: x - 7, width: 14, y: posY(range[1]), height: posY(range[0]) - posY(range[1]),
      class: "pc-brush" }));
  }
  const hit = svgEl("rect", { x: x - 12, width: 24, y: posY(1) - 4, height: posY(0) - posY(1) + 8,
    class: "pc-hit", "data-axis": name });
  hit.addEventListener("pointerdown", (event) => startBrush(event, name, hit));
  out.push(hit);
  return out;
}

// A drag along an axis keeps the runs inside it; a click without a drag clears that axis.
function startBrush(event, name, hit) {
  const svg = document.getElementById("parallel");
  const toY = (e) => {
    const box = svg.getBoundingClientRect();
    return Math.min(1, Math.max(0, yPos(((e.clientY - box.top) * PC.height) / box.height)));
  };
  const from = toY(event);
  hit.setPointerCapture(event.pointerId);
  const move = (e) => {
    const to = toY(e);
    if (Math.abs(to - from) > 0.01) insight.brushes[name] = [Math.min(from, to), Math.max(from, to)];
  };
  const up = (e) => {
    move(e);
    if (Math.abs(toY(e) - from) <= 0.01) delete insight.brushes[name];
    hit.removeEventListener("pointermove", move);
    hit.removeEventListener("pointerup", up);
    drawParallel();
  };
  hit.addEventListener("pointermove", move);
  hit.addEventListener("pointerup", up);
}

function showRun(run) {
  const config = Object.entries(run.config).map(([k, v]) => `${k}=${JSON.stringify(v)}`).join(" · ");
  document.getElementById("parallel-hover").textContent =
    `run ${run.run_id}${run.best ? " (best)" : ""}: ${insight.data.metric} ${run.metric.toPrecision(4)} · ${config}`;
}

window.renderInsight = renderInsight;
window.hideInsight = hideInsight;
})();
