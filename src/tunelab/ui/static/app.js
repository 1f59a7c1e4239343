// tunelab ui: one page over /api. Nothing is computed here that the API does not return; the
// page only lays it out, keeps the YAML in sync with the form and polls what is running.
"use strict";

const $ = (selector) => document.querySelector(selector);
const $$ = (selector) => Array.from(document.querySelectorAll(selector));
const ALWAYS_SENT = ["name", "task.name", "method.name", "model.name", "data.path"];
let formTimer = null;
let selectedRun = null;
let lastCompare = null;
let formVersion = 0;  // a form re-rendered for an older task/method choice is dropped

async function api(method, path, body) {
  const options = { method, headers: {} };
  if (body !== undefined) {
    options.headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  const response = await fetch(path, options);
  const data = await response.json().catch(() => ({ error: `HTTP ${response.status}` }));
  if (!response.ok) {
    const error = new Error(data.error || (data.detail && JSON.stringify(data.detail)) || `HTTP ${response.status}`);
    error.field = data.field === undefined ? null : data.field;
    throw error;
  }
  return data;
}

// ---- errors next to their field --------------------------------------------------------
function clearErrors(scope) {
  $$(`${scope || ""} .error[data-error-for]`).forEach((el) => { el.textContent = ""; });
}

function showError(field, message) {
  const target = $(`.error[data-error-for="${CSS.escape(field || "")}"]`) || $('.error[data-error-for=""]');
  target.textContent = message;
  const input = $(`[name="${CSS.escape(field || "")}"]`);
  if (input) input.classList.add("invalid");
}

// ---- New run -------------------------------------------------------------------------
function fieldInput(field) {
  let input;
  if (field.kind === "select") {
    input = document.createElement("select");
    for (const choice of field.choices) input.add(new Option(choice, choice));
  } else if (field.kind === "bool") {
    input = document.createElement("input");
    input.type = "checkbox";
  } else {
    input = document.createElement("input");
    input.type = "text";
    if (field.choices) {  // free text with suggestions (renderFields adds the datalist)
      input.setAttribute("list", `choices-${field.key}`);
      input.dataset.list = "yes";
    }
  }
  input.name = field.key;
  input.id = `field-${field.key}`;
  const initial = field.default === null || field.default === undefined ? "" : field.default;
  const text = Array.isArray(initial) ? JSON.stringify(initial) : String(initial);
  if (field.kind === "bool") input.checked = initial === true;
  else input.value = text;
  input.dataset.default = field.kind === "bool" ? String(initial === true) : text;
  return input;
}

function renderFields(fields, kept) {
  const box = $("#fields");
  box.replaceChildren();
  for (const field of fields) {
    const wrap = document.createElement("div");
    wrap.className = "field";
    wrap.dataset.key = field.key;
    const label = document.createElement("label");
    label.htmlFor = `field-${field.key}`;
    label.textContent = field.key;
    const input = fieldInput(field);
    if (kept[field.key] !== undefined && field.key !== "task.name" && field.key !== "method.name") {
      if (input.type === "checkbox") input.checked = kept[field.key] === "true";
      else input.value = kept[field.key];
    }
    const help = document.createElement("small");
    help.className = "help";
    help.textContent = field.help;
    const error = document.createElement("div");
    error.className = "error";
    error.dataset.errorFor = field.key;
    wrap.append(label, input, help, error);
    if (input.dataset.list) wrap.append(buildList(field));
    box.append(wrap);
  }
}

function buildList(field) {
  const list = document.createElement("datalist");
  list.id = `choices-${field.key}`;
  for (const choice of field.choices) list.append(new Option(choice));
  return list;
}

function rawValues() {
  const values = {};
  for (const input of $$("#fields [name]")) {
    values[input.name] = input.type === "checkbox" ? String(input.checked) : input.value.trim();
  }
  return values;
}

function formValues() {
  // what differs from the schema's defaults, and what every run names
  const values = {};
  for (const input of $$("#fields [name]")) {
    const value = input.type === "checkbox" ? String(input.checked) : input.value.trim();
    if (ALWAYS_SENT.includes(input.name) || value !== input.dataset.default) values[input.name] = value;
  }
  return values;
}

async function loadForm() {
  const asked = rawValues();
  const task = asked["task.name"] || "classify";
  const method = asked["method.name"] || "lora";
  const version = ++formVersion;
  delete document.body.dataset.form;  // a form is on its way: what is on screen will be replaced
  const form = await api("GET", `/api/form?task=${encodeURIComponent(task)}&method=${encodeURIComponent(method)}`);
  if (version !== formVersion) return;
  renderFields(form.fields, rawValues());  // what was typed while the form loaded is kept too
  $("[name='task.name']").value = task;
  $("[name='method.name']").value = method;
  document.body.dataset.form = `${task}/${method}`;  // which form is on screen (tests wait on it)
  const boxes = $("#method-boxes");
  boxes.replaceChildren();
  for (const option of $("[name='method.name']").options) {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${option.value}"> ${option.value}`;
    boxes.append(label);
  }
  syncConfig();
}

async function syncConfig() {
  clearErrors("#page-new");
  $$("#fields .invalid").forEach((el) => el.classList.remove("invalid"));
  try {
    const described = await api("POST", "/api/config", { values: formValues() });
    $("#yaml").textContent = described.yaml;
    $("#command").textContent = described.command;
  } catch (error) {
    showError(error.field, error.message);
  }
}

async function previewData() {
  clearErrors("#page-new");
  $("#preview").textContent = "reading the data ...";
  try {
    const checked = await api("POST", "/api/check", { values: formValues() });
    // the API sends a header line ("--- row 1: ...") then the row: one box a row
    const rows = [];
    checked.preview.forEach((line, i) => { if (i % 2 === 0) rows.push(line); else rows[rows.length - 1] += "\n" + line; });
    $("#preview").innerHTML = rows.map((row) => `<pre>${row}</pre>`).join("");
  } catch (error) {
    $("#preview").textContent = "";
    showError(error.field, error.message);
  }
}

async function startRun() {
  clearErrors("#page-new");
  const values = formValues();
  $("#start-button").disabled = true;
  try {
    await api("POST", "/api/runs", { values });
    selectedRun = values.name;
    location.hash = "#runs";
  } catch (error) {
    showError(error.field, error.message);
  } finally {
    $("#start-button").disabled = false;
  }
}

async function startCompare() {
  clearErrors("#page-new");
  const methods = $$("#method-boxes input:checked").map((box) => box.value);
  try {
    const tokens = $("#compare-tokens").value;
    const body = {
      values: formValues(),
      methods,
      seeds: $("#compare-seeds").value,
      trials: Number($("#compare-trials").value || 0),
      tokens: tokens ? Number(tokens) : null,
    };
    const started = await api("POST", "/api/compare", body);
    lastCompare = started.name;
    location.hash = "#compare";
  } catch (error) {
    showError(error.field, error.message);
  }
}

async function upload(file) {
  clearErrors("#page-new");
  const response = await fetch(`/api/upload?name=${encodeURIComponent(file.name)}`, { method: "PUT", body: file });
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    showError("upload", data.error || `HTTP ${response.status}`);
    return;
  }
  $("[name='data.path']").value = data.path;
  syncConfig();
}

// ---- Runs ----------------------------------------------------------------------------
function headline(run) {
  const s = run.summary || {};
  if (s.score === undefined) return "";
  const fmt = (x) => (typeof x === "number" ? x.toFixed(4) : x);
  return `${s.score_name}: ${fmt(s.score_before)} → ${fmt(s.score)}`;
}

async function refreshRuns() {
  const runs = await api("GET", "/api/runs");
  const body = $("#runs-table tbody");
  body.replaceChildren();
  for (const run of runs) {
    const row = body.insertRow();
    row.dataset.run = run.name;
    row.insertCell().textContent = run.name;
    const status = row.insertCell();
    status.textContent = run.status;
    status.className = `status ${run.status}`;
    row.insertCell().textContent = headline(run);
    row.addEventListener("click", () => { selectedRun = run.name; showRun(); });
  }
  fillRunChoices(runs);
  if (selectedRun) await showRun();
}

function progressText(run) {
  const p = run.progress || {};
  if (p.epoch === undefined) return run.status === "running" ? "starting ..." : "";
  const parts = [`epoch ${p.epoch}${p.epochs ? "/" + p.epochs : ""}`, `step ${p.step}`];
  if (p.tokens_per_s) parts.push(`${Math.round(p.tokens_per_s)} tokens/s`);
  if (p.seconds_left !== undefined) parts.push(`about ${Math.round(p.seconds_left)} s left`);
  return parts.join(" · ");
}

async function showRun() {
  const run = await api("GET", `/api/runs/${encodeURIComponent(selectedRun)}`);
  $("#run-detail").hidden = false;
  $("#run-title").textContent = run.name;
  $("#run-status").textContent = run.status;
  $("#run-status").className = `status ${run.status}`;
  $("#run-progress").textContent = run.status === "finished" ? headline(run) : progressText(run);
  $("#run-error").textContent = run.error || "";
  $("#stop-button").disabled = run.status !== "running";
  $("#resume-button").disabled = !run.resumable;
  $("#run-log").textContent = (run.log || []).join("\n");
  drawCurves(run.curves);
  const link = $("#report-link");
  link.hidden = !run.report;
  if (run.report) link.href = run.report;
  $("#export-box").hidden = run.status !== "finished";
  const frame = $("#report-frame");
  frame.hidden = !run.report;
  if (run.report && frame.getAttribute("src") !== run.report) frame.setAttribute("src", run.report);
}

function drawCurves(curves) {
  const svg = $("#curves");
  const width = 640, height = 240, pad = 36;
  const series = [[curves.train_loss, "train"], [curves.val_loss, "val"]].filter(([points]) => points.length);
  const ys = series.flatMap(([points]) => points.map((p) => p[1]));
  if (!ys.length) { svg.innerHTML = ""; return; }
  const low = Math.min(...ys), high = Math.max(...ys) || 1;
  const spanY = high - low || 1;
  let paths = "";
  for (const [points, name] of series) {
    const xs = points.map((p) => p[0]);
    const x0 = Math.min(...xs), spanX = Math.max(...xs) - x0 || 1;
    const coords = points.map(([x, y]) => [
      pad + ((x - x0) / spanX) * (width - 2 * pad),
      height - pad - ((y - low) / spanY) * (height - 2 * pad),
    ]);
    paths += `<polyline class="${name}" points="${coords.map((c) => c.join(",")).join(" ")}"/>`;
    if (name === "val") paths += coords.map(([x, y]) => `<circle class="val" cx="${x}" cy="${y}" r="3"/>`).join("");
  }
  svg.innerHTML = `<line x1="${pad}" y1="${height - pad}" x2="${width - pad}" y2="${height - pad}" class="axis"/>
    <line x1="${pad}" y1="${pad}" x2="${pad}" y2="${height - pad}" class="axis"/>
    <text x="2" y="${pad}">${high.toFixed(3)}</text><text x="2" y="${height - pad}">${low.toFixed(3)}</text>${paths}`;
}

async function runAction(action) {
  $("#run-error").textContent = "";
  try {
    await api("POST", `/api/runs/${encodeURIComponent(selectedRun)}/${action}`);
  } catch (error) {
    $("#run-error").textContent = error.message;
  }
  await refreshRuns();
}

async function exportRun(action) {
  $("#export-log").textContent = "";
  try {
    await api("POST", `/api/runs/${encodeURIComponent(selectedRun)}/export`, { action });
    pollExport();
  } catch (error) {
    $("#export-log").textContent = error.message;
  }
}

async function pollExport() {
  const state = await api("GET", `/api/runs/${encodeURIComponent(selectedRun)}/export`);
  $("#export-log").textContent = [`${state.status}`, ...(state.log || [])].join("\n");
  if (state.status === "running") setTimeout(pollExport, 1500);
}

// ---- Compare -------------------------------------------------------------------------
function fillRunChoices(runs) {
  const finished = runs.filter((run) => run.status === "finished");
  const box = $("#compare-runs");
  const ticked = new Set($$("#compare-runs input:checked").map((b) => b.value));
  box.replaceChildren(...finished.map((run) => {
    const label = document.createElement("label");
    label.innerHTML = `<input type="checkbox" value="${run.name}" ${ticked.has(run.name) ? "checked" : ""}> ${run.name} <small>${run.task || ""}</small>`;
    return label;
  }));
  const select = $("#play-run");
  const chosen = select.value;
  select.replaceChildren(new Option("choose a finished run", ""), ...finished.map((run) => {
    const option = new Option(`${run.name} (${run.task})`, run.name);
    option.dataset.abilities = (run.abilities || []).join(" ");
    return option;
  }));
  select.value = chosen;
}

function escapeHtml(text) {
  return text.replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function renderLeaderboard(board) {
  const table = $("#leaderboard");
  const rows = board.rows || [];
  if (!rows.length) { table.replaceChildren(); $("#compare-plots").replaceChildren(); return; }
  const fmt = (x) => (typeof x === "number" ? (Math.abs(x) >= 100 ? x.toFixed(0) : x.toFixed(4)) : x ?? "");
  // the score with its 95 % interval over seeds; the verdict of the paired bootstrap vs the best
  const score = (row) => (row.score_ci == null ? fmt(row.score) : `${fmt(row.score)} ± ${fmt(row.score_ci)}`);
  const columns = [
    ["method", (r) => r.method], ["status", (r) => r.status], ["score", score],
    ["vs best", (r) => r.verdict ?? ""], ["seeds", (r) => r.seeds ?? ""],
    ["before", (r) => fmt(r.score_before)], ["trainable %", (r) => fmt(r.trainable_pct)],
    ["train s", (r) => fmt(r.train_seconds)], ["trained tokens", (r) => fmt(r.trained_tokens)],
    ["peak RSS MB", (r) => fmt(r.peak_rss_mb)],
  ];
  const head = rows[0].score_name ? `score (${rows[0].score_name})` : "score";
  table.innerHTML = `<thead><tr>${columns.map(([c]) => `<th>${c === "score" ? head : c}</th>`).join("")}</tr></thead><tbody>${rows
    .map((row) => `<tr>${columns.map(([, cell]) => `<td>${escapeHtml(String(cell(row)))}</td>`).join("")}</tr>`).join("")}</tbody>`;
  $("#compare-plots").innerHTML = (board.plots || []).map((src) => `<img src="${src}?t=${Date.now()}" alt="comparison plot">`).join("");
}

async function comparePicked() {
  clearErrors("#page-compare");
  const runs = $$("#compare-runs input:checked").map((box) => box.value);
  try {
    renderLeaderboard(await api("POST", "/api/compare/runs", runs));
  } catch (error) {
    showError("runs", error.message);
  }
}

async function pollCompare() {
  if (!lastCompare) return;
  const state = await api("GET", `/api/compare/${encodeURIComponent(lastCompare)}`);
  $("#compare-status").textContent = `compare ${state.name}: ${state.status}${state.error ? " — " + state.error : ""}`;
  if (state.rows.length) renderLeaderboard(state);
}

// ---- Playground ----------------------------------------------------------------------
function showPlayground() {
  // what the run can be asked comes from its record (run_record.abilities), not its task's name
  const option = $("#play-run").selectedOptions[0];
  const abilities = option && option.dataset.abilities ? option.dataset.abilities.split(" ") : [];
  $("#chat-box").hidden = !abilities.includes("chat");
  $("#classify-box").hidden = !abilities.includes("classify");
}

async function streamAnswer(base, target) {
  target.textContent = "";
  const body = { run: $("#play-run").value, message: $("#message").value, base };
  const response = await fetch("/api/chat", {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  });
  if (!response.ok) {
    const data = await response.json().catch(() => ({}));
    showError("message", data.error || `HTTP ${response.status}`);
    return;
  }
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    target.textContent += decoder.decode(value, { stream: true });
  }
}

async function send() {
  clearErrors("#page-playground");
  const beside = $("#beside-base").checked;
  $("#base-column").hidden = !beside;
  $("#send-button").disabled = true;
  try {
    await streamAnswer(false, $("#answer-tuned"));
    if (beside) await streamAnswer(true, $("#answer-base"));
  } finally {
    $("#send-button").disabled = false;
  }
}

async function classify() {
  clearErrors("#page-playground");
  const texts = $("#texts").value.split("\n");
  try {
    const results = await api("POST", "/api/classify", { run: $("#play-run").value, texts });
    $("#classified").innerHTML = `<thead><tr><th>text</th><th>label</th><th>probabilities</th></tr></thead><tbody>${results
      .map((r) => `<tr><td></td><td class="label">${r.label}</td><td>${Object.entries(r.probs)
        .map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ")}</td></tr>`).join("")}</tbody>`;
    $$("#classified tbody tr").forEach((row, i) => { row.cells[0].textContent = results[i].text; });
  } catch (error) {
    showError("texts", error.message);
  }
}

// ---- pages ---------------------------------------------------------------------------
function showPage() {
  const page = (location.hash || "#new").slice(1);
  $$(".page").forEach((section) => { section.hidden = section.id !== `page-${page}`; });
  $$("nav a").forEach((a) => a.classList.toggle("active", a.dataset.page === page));
  if (page !== "new") refreshRuns().catch(() => {});
  if (page === "compare") pollCompare().catch(() => {});
}

function init() {
  $("#fields").addEventListener("change", (event) => {
    if (event.target.name === "task.name" || event.target.name === "method.name") loadForm();
    else syncConfig();
  });
  $("#fields").addEventListener("input", () => { clearTimeout(formTimer); formTimer = setTimeout(syncConfig, 400); });
  $("#preview-button").addEventListener("click", previewData);
  $("#start-button").addEventListener("click", startRun);
  $("#compare-button").addEventListener("click", startCompare);
  $("#upload").addEventListener("change", (event) => event.target.files[0] && upload(event.target.files[0]));
  $("#stop-button").addEventListener("click", () => runAction("stop"));
  $("#resume-button").addEventListener("click", () => runAction("resume"));
  $("#compare-picked").addEventListener("click", comparePicked);
  $("#play-run").addEventListener("change", showPlayground);
  $("#send-button").addEventListener("click", send);
  $("#classify-button").addEventListener("click", classify);
  window.addEventListener("hashchange", showPage);
  api("GET", "/api/form").then((form) => {
    $("#export-buttons").replaceChildren(...Object.entries(form.exports).map(([action, help]) => {
      const button = document.createElement("button");
      button.type = "button";
      button.textContent = action;
      button.title = help;
      button.dataset.export = action;
      button.addEventListener("click", () => exportRun(action));
      return button;
    }));
  });
  loadForm();
  showPage();
  setInterval(() => {
    const page = (location.hash || "#new").slice(1);
    if (page === "runs") refreshRuns().catch(() => {});
    if (page === "compare") pollCompare().catch(() => {});
  }, 1500);
}

init();
