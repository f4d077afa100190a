// mlplab dashboard: the caller's runs, a run or sweep view with live SVG loss curves.
// Hand-written, no framework; needs sse.js (followEvents) and chart.js (drawLossChart).
"use strict";

const TOKEN_KEY = "mlplab.token";
const POLL_MS = 3000;
const TERMINAL = new Set(["succeeded", "failed", "cancelled", "diverged", "stopped_early"]);

const $ = (id) => document.getElementById(id);
const state = { runs: [], view: null, stream: null, drawPending: false, pollTimer: null,
  errors: { runs: "", view: "" } };

// ---- small helpers ---------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (key === "class") node.className = value;
    // through the CSSOM: the page's Content-Security-Policy refuses style="" attributes
    else if (key === "style") Object.assign(node.style, value);
    else node.setAttribute(key, value);
  }
  for (const child of children) node.append(child ?? "");
  return node;
}

// a huge loss (a diverging run) in 4 significant digits, not 14 characters of fixed point
const fmt = (v, digits = 4) => (v === null || v === undefined ? "–"
  : Math.abs(v) >= 1e5 ? Number(v).toPrecision(digits) : Number(v).toFixed(digits));
const fmtValue = (v) => (Array.isArray(v) ? v.join("x") : typeof v === "number" ? `${+v.toPrecision(4)}` : `${v}`);
const lastEpoch = (run) => (run.epochs && run.epochs.length ? run.epochs[run.epochs.length - 1] : null);

// One message slot per source, so the runs poll recovering does not hide a view error.
function showError(source, message) {
  state.errors[source] = message;
  const text = Object.values(state.errors).filter(Boolean).join(" · ");
  $("error").textContent = text;
  $("error").hidden = !text;
}

// Idle (no view streaming): the live queue instead, from sweeps.js's poll of /v1/limits.
function setConn(mode) {
  state.connMode = mode;
  $("conn").textContent = mode === "idle" && state.queueText ? state.queueText : mode;
  $("conn").className = `pill ${mode}`;
}

// ---- auth and HTTP ---------------------------------------------------------------------

function authHeaders() {
  const token = localStorage.getItem(TOKEN_KEY);
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function askToken(message) {
  $("token-form").hidden = false;
  $("token-note").textContent = message || "kept in this browser only; sent as a Bearer header";
  $("token-input").focus();
}

class HttpError extends Error {
  constructor(status, detail) { super(detail); this.status = status; }
}

async function api(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.ok) return response.json();
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) askToken("this server needs a token: " + (body.detail || ""));
  throw new HttpError(response.status, body.detail || response.statusText);
}

// ---- the runs table --------------------------------------------------------------------

function runConfig(run) {
  if (run.varied && Object.keys(run.varied).length) {
    return Object.entries(run.varied).map(([k, v]) => `${k}=${fmtValue(v)}`).join(" ");
  }
  return `${run.spec.dataset} ${run.spec.activation} lr=${fmtValue(run.spec.lr)}`;
}

function epochCell(run) {
  const last = lastEpoch(run);
  return `${last ? last.epoch : 0}/${run.spec.epochs}`;
}

function runRow(run) {
  const last = lastEpoch(run) || {};
  const selected = state.view && state.view.kind === "run" && state.view.id === run.id;
  // ids cut to 8 of their 16 digits (the whole id in the tooltip): at 1400 px the numbers
  // and the config fit beside them
  const sweep = run.sweep_id
    ? el("a", { class: "id", href: `#sweep=${run.sweep_id}`, title: run.sweep_id }, run.sweep_id.slice(0, 8)) : "–";
  return el("tr", { class: selected ? "selected" : "" },
    el("td", {}, el("a", { class: "id", href: `#run=${run.id}`, title: run.id }, run.id.slice(0, 8))),
    el("td", {}, sweep),
    el("td", { class: `status-${run.status}` }, run.status),
    el("td", { class: "num" }, epochCell(run)),
    el("td", { class: "num" }, fmt(last.train_loss)),
    el("td", { class: "num" }, fmt(last.test_loss)),
    el("td", { class: "num" }, fmt(last.test_accuracy, 3)),
    el("td", { class: "config" }, runConfig(run)));
}

const ORDER = { running: 0, queued: 1 };

function renderRuns() {
  const showFinished = $("show-finished").checked;
  const runs = state.runs
    .filter((run) => showFinished || !TERMINAL.has(run.status))
    .sort((a, b) => (ORDER[a.status] ?? 2) - (ORDER[b.status] ?? 2));
  $("runs").tBodies[0].replaceChildren(...runs.map(runRow));
  $("runs-empty").hidden = state.runs.length > 0;
  renderSweepPicker();
}

function renderSweepPicker() {
  const ids = [...new Set(state.runs.map((run) => run.sweep_id).filter(Boolean))];
  const current = state.view && state.view.kind === "sweep" ? state.view.id : "";
  if (current && !ids.includes(current)) ids.unshift(current);
  const options = [el("option", { value: "" }, "—"), ...ids.map((id) => el("option", { value: id }, id))];
  $("sweep-pick").replaceChildren(...options);
  $("sweep-pick").value = current;
}

async function pollRuns() {
  clearTimeout(state.pollTimer);
  if (!document.hidden) {
    try {
      state.runs = (await api("/v1/runs?limit=100")).data;
      renderRuns();
      showError("runs", "");
    } catch (err) {
      showError("runs", `runs: ${err.message}`);
    }
  }
  state.pollTimer = setTimeout(pollRuns, POLL_MS);
}

// ---- the run / sweep view --------------------------------------------------------------

function newView(kind, id) {
  return { kind, id, runs: new Map(), order: [], labelFields: [], best: null, meta: null,
    summaryTimer: null };
}

function addRun(view, run) {
  const points = new Map((run.epochs || []).map((e) => [e.epoch, e]));
  const existing = view.runs.get(run.id);
  if (existing) for (const [k, v] of existing.points) points.set(k, v);
  if (!existing) view.order.push(run.id);
  view.runs.set(run.id, { ...run, points });
}

function onStreamEvent(view, type, data) {
  if (type === "stage") {  // a staged sweep moved on: its new stage's runs join the view
    loadSweep(view).then(scheduleDraw).catch(() => {});
    return;
  }
  const runId = view.kind === "run" ? view.id : data.run_id;
  const run = view.runs.get(runId);
  if (!run) return;
  if (type === "epoch") run.points.set(data.epoch, data);
  if (type === "status") {
    run.status = data.status;
    refreshSummary(view);
  }
  scheduleDraw();
}

async function openView() {
  const match = location.hash.match(/^#(run|sweep)=([\w-]+)$/);
  if (state.stream) state.stream.abort();
  state.view = null;
  window.hideInsight();
  if (!match) { clearView(); return; }
  const view = newView(match[1], match[2]);
  state.view = view;
  renderSweepPicker();
  try {
    await (view.kind === "run" ? loadRun(view) : loadSweep(view));
  } catch (err) {
    showError("view", `${view.kind} ${view.id}: ${err.message}`);
    return;
  }
  if (state.view !== view) return;
  scheduleDraw();
  state.stream = new AbortController();
  const path = `/v1/${view.kind}s/${view.id}/events`;
  followEvents(path, {
    headers: authHeaders,
    onEvent: (type, data) => onStreamEvent(view, type, data),
    onState: (mode) => { setConn(mode); if (mode === "live") showError("view", ""); },
    onRefused: (status, detail) => {
      if (status === 401) askToken("this server needs a token");
      showError("view", `${path}: ${detail}`);
    },
    isDone: () => [...view.runs.values()].every((run) => TERMINAL.has(run.status)),
    signal: state.stream.signal,
  });
}

async function loadRun(view) {
  const run = await api(`/v1/runs/${view.id}`);
  view.labelFields = ["activation", "lr"];
  addRun(view, run);
  renderSummary(view);
}

async function loadSweep(view) {
  view.meta = await api(`/v1/sweeps/${view.id}`);
  view.labelFields = view.meta.varied || [];
  const page = await api(`/v1/runs?sweep_id=${encodeURIComponent(view.id)}&limit=500`);
  page.data.forEach((run) => addRun(view, run));
  await fetchSummary(view);
}

// Debounced per view: a burst of status events costs one round of requests.
function refreshSummary(view) {
  clearTimeout(view.summaryTimer);
  view.summaryTimer = setTimeout(() => fetchSummary(view), 300);
}

async function fetchSummary(view) {
  try {
    if (view.kind === "sweep") {
      view.meta = await api(`/v1/sweeps/${view.id}`);
      view.leaderboard = await api(`/v1/sweeps/${view.id}/leaderboard`);
      if (state.view === view) window.renderInsight(view.meta, api);  // insight.js
    } else {
      view.meta = await api(`/v1/runs/${view.id}`);
    }
    if (state.view === view) { renderSummary(view); scheduleDraw(); showError("view", ""); }
  } catch (err) {
    if (state.view === view) showError("view", `${view.kind} ${view.id}: ${err.message}`);
  }
}

function renderSummary(view) {
  renderSweepTools(view);  // sweeps.js: labels and retry of a sweep's view
  view.best = view.kind === "sweep" && view.meta && view.meta.best ? view.meta.best.run_id : null;
  if (view.kind === "run") {
    const run = view.meta || view.runs.get(view.id);
    const result = run.result ? ` · final train loss ${fmt(run.result.final_train_loss)}` : "";
    const shared = run.result && run.result.shared_epochs
      ? ` · first ${run.result.shared_epochs} epochs trained once with runs of the same lrs so far`
      : "";
    $("view-title").textContent = `run ${view.id}`;
    $("view-summary").textContent = `${run.status} · ${runConfig(run)}${result}${shared}${run.error ? " · " + run.error : ""}`;
    $("leaderboard").hidden = true;
    $("view-verdict").hidden = $("view-warnings").hidden = true;
    renderModel(view, run);
    return;
  }
  $("model-box").hidden = true;
  const meta = view.meta;
  const counts = Object.entries(meta.counts).map(([k, v]) => `${v} ${k}`).join(", ");
  const best = meta.best ? ` · best ${fmt(meta.best.value)} (${meta.best.run_id})` : "";
  $("view-title").textContent = `sweep ${meta.name || meta.id}`;
  const search = meta.search ? ` · ${meta.search.sampler} batches ${meta.search.batches_done}/${meta.search.batches}${meta.search.next ? " · next: " + meta.search.next : ""}` : "";
  $("view-summary").textContent = `${meta.metric} (${meta.mode}) · ${counts}${best}${search}`;
  // the verdict: does the winner beat the runner-up by more than seed noise (lab/verdict.py)
  $("view-verdict").textContent = meta.verdict ? `verdict: ${meta.verdict.summary}` : "";
  $("view-verdict").hidden = !meta.verdict;
  $("view-warnings").textContent = (meta.warnings || []).map((w) => `⚠ ${w}`).join(" · ");
  $("view-warnings").hidden = !(meta.warnings || []).length;
  renderLeaderboard(view);
}

function renderLeaderboard(view) {
  const board = view.leaderboard;
  if (!board) return;
  const fields = view.labelFields;
  const head = el("tr", {}, ...["#", "run", "status", board.metric, ...fields].map((h) => el("th", {}, h)));
  const rows = board.data.map((row) => el("tr", { class: row.run_id === view.best ? "selected" : "" },
    el("td", {}, row.rank ?? "–"),
    el("td", {}, el("a", { class: "id", href: `#run=${row.run_id}` }, row.run_id)),
    el("td", { class: `status-${row.status}` }, row.status),
    el("td", { class: "num" }, row.run_ids ? `${fmt(row.value)} ± ${fmt(row.std)} (n=${row.n})` : fmt(row.value)),
    ...fields.map((f) => el("td", {}, fmtValue(row.varied[f])))));
  $("leaderboard").tHead.replaceChildren(head);
  $("leaderboard").tBodies[0].replaceChildren(...rows);
  $("leaderboard").hidden = false;
}

// ---- the selected run's model and confusion matrix --------------------------------------

// Both need the Bearer header, so they are fetched, not linked: the picture becomes a data:
// URL (the CSP allows img-src data:), the weights a blob saved through a temporary link.
async function fetchBlob(path) {
  const response = await fetch(path, { headers: authHeaders(), cache: "no-store" });
  if (response.ok) return response.blob();
  const body = await response.json().catch(() => ({}));
  throw new HttpError(response.status, body.detail || response.statusText);
}

function renderModel(view, run) {
  const model = run.model;
  const confusion = Boolean(run.result && run.result.confusion);
  $("model-box").hidden = !(model || confusion);
  $("model-download").hidden = !(model && model.state === "stored");
  $("model-note").textContent = !model ? ""
    : model.state === "stored" ? `safetensors, ${model.bytes} bytes with its model.json`
    : `no model: ${model.reason}`;
  $("confusion").hidden = !confusion;
  if (confusion && view.confusionOf !== run.status) {
    view.confusionOf = run.status;
    $("confusion").removeAttribute("src");  // not the last run's picture meanwhile
    loadConfusion(view);
  }
}

async function loadConfusion(view) {
  try {
    const blob = await fetchBlob(`/v1/runs/${view.id}/confusion.png`);
    const url = await new Promise((resolve, reject) => {
      const reader = new FileReader();
      reader.onload = () => resolve(reader.result);
      reader.onerror = () => reject(reader.error);
      reader.readAsDataURL(blob);
    });
    if (state.view === view) $("confusion").src = url;
  } catch (err) {
    if (state.view === view) showError("view", `confusion matrix: ${err.message}`);
  }
}

async function downloadModel() {
  const view = state.view;
  if (!view || view.kind !== "run") return;
  try {
    const url = URL.createObjectURL(await fetchBlob(`/v1/runs/${view.id}/model`));
    const link = el("a", { href: url, download: `${view.id}-final.safetensors`, hidden: "" });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch (err) {
    showError("view", `model: ${err.message}`);
  }
}

function clearView() {
  $("model-box").hidden = true;
  window.hideInsight();
  $("view-title").textContent = "Pick a run or a sweep";
  $("view-summary").textContent = "";
  $("leaderboard").hidden = true;
  $("chart").replaceChildren();
  $("legend").replaceChildren();
  setConn("idle");
  renderSweepPicker();
}

// ---- the SVG chart ---------------------------------------------------------------------

function scheduleDraw() {
  if (state.drawPending) return;
  state.drawPending = true;
  requestAnimationFrame(() => {
    state.drawPending = false;
    if (state.view) drawChart(state.view);
  });
}

function drawChart(view) {
  const runs = view.order.map((id) => view.runs.get(id));
  const series = runs.map((run) => [...run.points.values()].sort((a, b) => a.epoch - b.epoch));
  const xMax = Math.max(2, ...runs.map((run) => run.spec.epochs), ...series.flat().map((p) => p.epoch));
  const bestIndex = runs.findIndex((run) => run.id === view.best);
  drawLossChart($("chart"), { series, xMax, bestIndex });
  drawLegend(view, runs);
}

function drawLegend(view, runs) {
  const palette = colours(runs.length);
  $("legend").replaceChildren(...runs.map((run, i) => {
    const fields = view.labelFields.map((f) => `${f}=${fmtValue((run.varied || {})[f] ?? run.spec[f])}`);
    const best = run.id === view.best;
    const label = `${fields.join(" ") || run.id}${best ? " ★" : ""} · ${run.status}`;
    return el("li", { class: best ? "best" : "" },
      el("span", { class: "swatch", style: { background: palette[i] } }), label);
  }));
}

// ---- wiring ----------------------------------------------------------------------------

function init() {
  $("token-button").addEventListener("click", () => askToken());
  $("token-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token-input").value.trim();
    if (token) localStorage.setItem(TOKEN_KEY, token);
    $("token-input").value = "";
    $("token-form").hidden = true;
    showError("runs", "");
    showError("view", "");
    pollRuns();
    openView();
  });
  $("token-forget").addEventListener("click", () => {
    localStorage.removeItem(TOKEN_KEY);
    $("token-form").hidden = true;
  });
  $("show-finished").addEventListener("change", renderRuns);
  $("model-download").addEventListener("click", downloadModel);
  $("sweep-pick").addEventListener("change", (event) => {
    location.hash = event.target.value ? `#sweep=${event.target.value}` : "";
  });
  window.addEventListener("hashchange", () => { showError("view", ""); openView(); renderRuns(); });
  document.addEventListener("visibilitychange", () => { if (!document.hidden) pollRuns(); });
  pollRuns();
  openView();
}

document.addEventListener("DOMContentLoaded", init);
