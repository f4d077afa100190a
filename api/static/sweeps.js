// mlplab dashboard, sweeps as objects: the sweep list, a compare view, retry and labels on a
// sweep's view, the newest active sweep shown by default, the live queue in the status pill.
// Loaded after dashboard.js and uses its helpers ($, el, api, fmt, state, openView, ...).
"use strict";

const SWEEPS_MS = 3000;
const sweeps = { list: [], picked: new Set(), autoPicked: false, timer: null };

async function send(method, path, body) {
  const init = { method, headers: { ...authHeaders() }, cache: "no-store" };
  if (body !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body);
  }
  const response = await fetch(path, init);
  const answer = await response.json().catch(() => ({}));
  if (!response.ok) throw new HttpError(response.status, answer.detail || response.statusText);
  return answer;
}

// ---- the sweep list ----------------------------------------------------------------------

function sweepStatus(sweep) {
  const counts = Object.entries(sweep.counts).map(([k, v]) => `${v} ${k}`).join(", ");
  return `${sweep.done ? "done" : "active"} · ${counts}`;
}

function sweepRow(sweep) {
  const box = el("input", { type: "checkbox", "aria-label": `compare ${sweep.id}` });
  box.checked = sweeps.picked.has(sweep.id);
  box.addEventListener("change", () => {
    if (box.checked) sweeps.picked.add(sweep.id); else sweeps.picked.delete(sweep.id);
    $("compare-button").disabled = sweeps.picked.size < 2;
  });
  const selected = state.view && state.view.kind === "sweep" && state.view.id === sweep.id;
  return el("tr", { class: selected ? "selected" : "" },
    el("td", {}, box),
    el("td", { class: "name" }, el("a", { href: `#sweep=${sweep.id}`, title: sweep.id }, sweep.name || sweep.id)),
    el("td", { class: "tags" }, (sweep.tags || []).join(", ")),
    el("td", { class: sweep.done ? "" : "status-running" }, sweepStatus(sweep)),
    el("td", { class: "num" }, sweep.best ? fmt(sweep.best.value) : "–"));
}

function renderSweeps() {
  $("sweeps").tBodies[0].replaceChildren(...sweeps.list.map(sweepRow));
  $("sweeps-empty").hidden = sweeps.list.length > 0;
  $("compare-button").disabled = sweeps.picked.size < 2;
}

async function pollSweeps() {
  clearTimeout(sweeps.timer);
  if (!document.hidden) {
    try {
      sweeps.list = (await api("/v1/sweeps?limit=20")).data;
      renderSweeps();
      pickDefault();
      const usage = (await api("/v1/limits")).usage;
      state.queueText = usage.running || usage.queued
        ? `${usage.running} running · ${usage.queued} queued` : "queue empty";
      if (state.connMode === "idle" || !state.connMode) setConn("idle");
    } catch (err) {
      showError("runs", `sweeps: ${err.message}`);
    }
  }
  sweeps.timer = setTimeout(pollSweeps, SWEEPS_MS);
}

// With nothing picked, the newest sweep still going (once: "—" in the picker stays empty).
function pickDefault() {
  if (sweeps.autoPicked || location.hash) return;
  sweeps.autoPicked = true;
  const active = sweeps.list.find((sweep) => !sweep.done);
  if (!active) return;
  history.replaceState(null, "", `#sweep=${active.id}`);
  openView();
  renderRuns();
}

// ---- a sweep's tools: labels and retry -----------------------------------------------------

function renderSweepTools(view) {
  const tools = $("sweep-tools");
  tools.hidden = view.kind !== "sweep" || !view.meta;
  if (tools.hidden || tools.dataset.sweep === view.id) return;
  tools.dataset.sweep = view.id;  // fill the fields once per sweep: never over a user's typing
  $("label-name").value = view.meta.name || "";
  $("label-tags").value = (view.meta.tags || []).join(", ");
  $("label-notes").value = view.meta.notes || "";
  const strategy = (view.meta.spec || {}).strategy;
  $("extend-tools").hidden = !["random", "tpe", "gp", "cmaes", "qmc"].includes(strategy);  // more samples
  $("longer-tools").hidden = strategy === "staged";  // continue its runs to more epochs
  $("tools-note").textContent = "";
}

async function saveLabels(event) {
  event.preventDefault();
  const view = state.view;
  if (!view || view.kind !== "sweep") return;
  const tags = $("label-tags").value.split(",").map((t) => t.trim()).filter(Boolean);
  const body = { name: $("label-name").value.trim() || null, tags, notes: $("label-notes").value || null };
  try {
    view.meta = await send("PATCH", `/v1/sweeps/${view.id}`, body);
    $("tools-note").textContent = "saved";
    renderSummary(view);
    pollSweeps();
  } catch (err) {
    $("tools-note").textContent = `not saved: ${err.message}`;
  }
}

async function retrySweep() {
  const view = state.view;
  if (!view || view.kind !== "sweep") return;
  try {
    const answer = await send("POST", `/v1/sweeps/${view.id}/retry`);
    $("tools-note").textContent = `${answer.count} run(s) queued again`;
    openView();
  } catch (err) {
    $("tools-note").textContent = `retry: ${err.message}`;
  }
}

async function extendSweep() {
  const view = state.view;
  if (!view || view.kind !== "sweep") return;
  try {
    const answer = await send("POST", `/v1/sweeps/${view.id}/extend`, { n: Number($("extend-n").value) });
    $("tools-note").textContent = `${answer.count} new run(s) queued`;
    openView();
  } catch (err) {
    $("tools-note").textContent = `extend: ${err.message}`;
  }
}

async function trainLonger() {
  const view = state.view;
  if (!view || view.kind !== "sweep") return;
  try {
    const body = { epochs: Number($("extend-epochs").value) };
    const answer = await send("POST", `/v1/sweeps/${view.id}/extend`, body);
    const skipped = (answer.skipped || []).length;
    $("tools-note").textContent = `${answer.count} run(s) continue to ${body.epochs} epochs` +
      (skipped ? ` (${skipped} skipped: ${answer.skipped[0].reason})` : "");
    openView();
  } catch (err) {
    $("tools-note").textContent = `train longer: ${err.message}`;
  }
}

// ---- the compare view ---------------------------------------------------------------------

async function openCompare() {
  const match = location.hash.match(/^#compare=([\w,-]+)$/);
  $("compare-box").hidden = !match;
  if (!match) return;
  $("view-title").textContent = "compare sweeps";
  $("chart-box").hidden = $("leaderboard").hidden = true;
  const ids = encodeURIComponent(match[1]);
  try {
    const body = await api(`/v1/compare?sweeps=${ids}`);
    $("view-summary").textContent = `${body.metric} (${body.mode}) · ` + body.sweeps
      .map((s) => `${s.name || s.id}: best ${fmt(s.value)}`).join(" · ");
    const head = el("tr", {}, ...["#", "run", "sweep", "status", body.metric].map((h) => el("th", {}, h)));
    const rows = body.data.map((row) => el("tr", {},
      el("td", {}, row.rank ?? "–"),
      el("td", {}, el("a", { class: "id", href: `#run=${row.run_id}` }, row.run_id)),
      el("td", {}, row.sweep_name || row.sweep_id),
      el("td", { class: `status-${row.status}` }, row.status),
      el("td", { class: "num" }, fmt(row.value))));
    $("compare-table").tHead.replaceChildren(head);
    $("compare-table").tBodies[0].replaceChildren(...rows);
    $("compare-img").src = await dataUrl(await fetchBlob(`/v1/compare.png?sweeps=${ids}`));
    $("compare-img").hidden = false;
  } catch (err) {
    $("compare-img").hidden = true;
    showError("view", `compare: ${err.message}`);
  }
}

function dataUrl(blob) {
  return new Promise((resolve, reject) => {
    const reader = new FileReader();
    reader.onload = () => resolve(reader.result);
    reader.onerror = () => reject(reader.error);
    reader.readAsDataURL(blob);
  });
}

// ---- wiring ------------------------------------------------------------------------------

function initSweeps() {
  $("compare-button").addEventListener("click", () => {
    location.hash = `#compare=${[...sweeps.picked].join(",")}`;
  });
  $("sweep-tools").addEventListener("submit", saveLabels);
  $("retry-button").addEventListener("click", retrySweep);
  $("extend-button").addEventListener("click", extendSweep);
  $("longer-button").addEventListener("click", trainLonger);
  window.addEventListener("hashchange", () => {
    $("chart-box").hidden = false;
    $("sweep-tools").hidden = true;  // until the new view's sweep has loaded (never stale)
    delete $("sweep-tools").dataset.sweep;
    openCompare();
    renderSweeps();
  });
  pollSweeps();
  openCompare();
}

document.addEventListener("DOMContentLoaded", initSweeps);
