// Loss curves as SVG: train solid, test dashed, one colour per run, the best run thicker.
"use strict";

const SVG_NS = "http://www.w3.org/2000/svg";
const TAB10 = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
  "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];

function colours(n) {
  if (n <= TAB10.length) return TAB10.slice(0, n);
  return Array.from({ length: n }, (_, i) => `hsl(${Math.round((360 * i) / n)}, 65%, 48%)`);
}

function svg(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = text;
  return node;
}

function niceTicks(lo, hi, count) {
  const step0 = (hi - lo) / count;
  const mag = 10 ** Math.floor(Math.log10(step0));
  const step = [1, 2, 5, 10].map((m) => m * mag).find((s) => s >= step0) || step0;
  const ticks = [];
  for (let t = Math.ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) ticks.push(+t.toPrecision(6));
  return ticks;
}

function logTicks(lo, hi) {
  const ticks = [];
  for (let k = Math.floor(Math.log10(lo)); k <= Math.ceil(Math.log10(hi)); k++) {
    for (const m of [1, 2, 5]) { const t = m * 10 ** k; if (t >= lo && t <= hi) ticks.push(+t.toPrecision(6)); }
  }
  return ticks;
}

// Log scale when every loss is positive and they span more than a decade, as in plot.png.
function yScale(values, top, bottom) {
  const lo = Math.min(...values);
  const hi = Math.max(...values);
  if (lo > 0 && hi / lo > 10) {
    const [a, b] = [Math.log10(lo) - 0.02, Math.log10(hi) + 0.02];
    return { map: (v) => bottom - ((Math.log10(v) - a) / (b - a)) * (bottom - top),
      ticks: logTicks(10 ** a, 10 ** b), log: true };
  }
  const pad = (hi - lo) * 0.05 || Math.abs(hi) * 0.05 || 1;
  const [a, b] = [lo - pad, hi + pad];
  return { map: (v) => bottom - ((v - a) / (b - a)) * (bottom - top), ticks: niceTicks(a, b, 5),
    log: false };
}

// An SVG path through the finite values; a missing (diverged) value lifts the pen.
function curvePath(points, field, x, y) {
  let d = "";
  let pen = "M";
  for (const p of points) {
    const v = p[field];
    if (!Number.isFinite(v) || (y.log && v <= 0)) { pen = "M"; continue; }
    d += `${pen}${x(p.epoch).toFixed(1)},${y.map(v).toFixed(1)}`;
    pen = "L";
  }
  return d;
}

function drawCurves(series, palette, bestIndex, x, y) {
  const nodes = [];
  series.forEach((points, i) => {
    const width = i === bestIndex ? 3.2 : 1.6;
    const style = { stroke: palette[i], "stroke-width": width };
    const test = curvePath(points, "test_loss", x, y);
    const train = curvePath(points, "train_loss", x, y);
    if (test) nodes.push(svg("path", { class: "curve test", d: test, ...style }));
    if (train) nodes.push(svg("path", { class: "curve", d: train, ...style }));
    const last = points.filter((p) => Number.isFinite(p.train_loss)).pop();
    if (last) nodes.push(svg("circle", { cx: x(last.epoch), cy: y.map(last.train_loss), r: width + 1, fill: palette[i] }));
  });
  return nodes;
}

// series: per run, its epochs sorted; xMax: the most epochs any run will have.
function drawLossChart(target, { series, xMax, bestIndex }) {
  const W = 800, H = 360, L = 56, R = 12, T = 12, B = 34;
  const values = series.flat().flatMap((p) => [p.train_loss, p.test_loss]).filter((v) => Number.isFinite(v));
  const x = (e) => L + ((e - 1) / (xMax - 1)) * (W - L - R);
  const nodes = [svg("line", { class: "axis", x1: L, y1: H - B, x2: W - R, y2: H - B }),
    svg("line", { class: "axis", x1: L, y1: T, x2: L, y2: H - B }),
    svg("text", { x: (L + W - R) / 2, y: H - 4, "text-anchor": "middle" }, "epoch")];
  for (const t of niceTicks(1, xMax, Math.min(10, xMax - 1)).filter((t) => Number.isInteger(t))) {
    nodes.push(svg("text", { x: x(t), y: H - B + 14, "text-anchor": "middle" }, t));
  }
  if (!values.length) {
    nodes.push(svg("text", { x: W / 2, y: H / 2, "text-anchor": "middle" }, "waiting for the first epoch…"));
  } else {
    const y = yScale(values, T, H - B);
    for (const t of y.ticks) {
      nodes.push(svg("line", { class: "grid", x1: L, y1: y.map(t), x2: W - R, y2: y.map(t) }),
        svg("text", { x: L - 6, y: y.map(t) + 4, "text-anchor": "end" }, `${t}`));
    }
    nodes.push(...drawCurves(series, colours(series.length), bestIndex, x, y));
  }
  target.replaceChildren(...nodes);
}
