// Scout's status page: polls GET /v1/status and draws it. No library, nothing loaded from elsewhere.
// A read-scope token comes from the address (#token=sct_..., never sent to the server as part of the URL)
// or the form, and is kept for this tab only (sessionStorage).
"use strict";

const POLL_MS = Number(new URLSearchParams(location.search).get("interval_ms")) || 2000;
const STALE_AFTER_MS = 3 * POLL_MS + 5000;
const LAYERS = ["received", "landed", "silvered", "quarantined"];
let lastOk = 0;

function token() {
  const match = location.hash.match(/token=([^&]+)/);
  if (match) {
    sessionStorage.setItem("scout-token", decodeURIComponent(match[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
  return sessionStorage.getItem("scout-token");
}

function el(tag, attrs, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value !== null && value !== undefined) node.setAttribute(key, value);
  }
  if (text !== undefined && text !== null) node.textContent = text;
  return node;
}

function num(value, digits) {
  if (value === null || value === undefined) return "";
  return digits === undefined ? Number(value).toLocaleString("en") : Number(value).toFixed(digits);
}

function time(value) {
  return value ? new Date(value).toISOString().replace("T", " ").slice(0, 19) : "";
}

function minute(value) {
  return new Date(value).toISOString().slice(11, 16);
}

// A cell: text shown, the raw figure in data-value (what the tests read), a field name.
function cell(field, value, shown) {
  const attrs = { "data-field": field };
  if (typeof value === "number") attrs["data-value"] = String(value);
  return el("td", attrs, shown === undefined ? (value === null ? "" : String(value)) : shown);
}

function fill(tableId, rows, toCells, key) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren(...rows.map((row) => {
    const tr = el("tr", { "data-key": String(key(row)) });
    tr.append(...toCells(row, tr));
    return tr;
  }));
}

function drawThroughput(data) {
  const since = new Date(data.since).getTime();
  const byMinute = new Map(data.throughput.map((row) => [new Date(row.minute).getTime(), row]));
  const minutes = [];
  for (let i = 0; i < data.window_minutes; i++) {
    const at = since + i * 60000;
    minutes.push(byMinute.get(at) || { minute: new Date(at).toISOString(), received: 0, landed: 0, silvered: 0, quarantined: 0 });
  }
  fill("throughput", minutes.slice().reverse(), (row) => [
    el("td", {}, minute(row.minute)), ...LAYERS.map((layer) => cell(layer, row[layer], num(row[layer]))),
  ], (row) => row.minute);
  for (const layer of LAYERS) {
    const total = minutes.reduce((sum, row) => sum + row[layer], 0);
    const td = document.querySelector(`#throughput tfoot td[data-field="${layer}"]`);
    td.dataset.value = String(total);
    td.textContent = num(total);
  }
  const chart = document.getElementById("chart");
  const peak = Math.max(1, ...minutes.flatMap((row) => LAYERS.map((layer) => row[layer])));
  const slot = 600 / minutes.length;
  const bar = slot / (LAYERS.length + 1);
  const rects = [];
  minutes.forEach((row, i) => LAYERS.forEach((layer, j) => {
    const height = (row[layer] / peak) * 115;
    const rect = document.createElementNS("http://www.w3.org/2000/svg", "rect");
    rect.setAttribute("class", layer);
    rect.setAttribute("x", String(i * slot + j * bar + bar / 2));
    rect.setAttribute("y", String(120 - height));
    rect.setAttribute("width", String(bar));
    rect.setAttribute("height", String(height));
    rects.push(rect);
  }));
  chart.replaceChildren(...rects);
  document.getElementById("window").textContent = `last ${data.window_minutes} minutes`;
}

function drawPartitions(data) {
  document.getElementById("broker").textContent =
    data.broker_reachable ? `topic ${data.topic}` : `topic ${data.topic}: the broker did not answer, lag unknown`;
  fill("partitions", data.partitions, (row, tr) => {
    if (row.lag > 0 && row.moved_at && Date.now() - new Date(row.moved_at).getTime() > 30000) tr.className = "bad";
    return [
      cell("partition", row.partition), cell("landed_offset", row.landed_offset, num(row.landed_offset)),
      cell("end_offset", row.end_offset, num(row.end_offset)), cell("lag", row.lag, num(row.lag)),
      cell("epoch", row.epoch), el("td", { "data-field": "owner" }, row.owner || ""),
      el("td", { "data-field": "moved_at" }, time(row.moved_at)),
    ];
  }, (row) => row.partition);
}

function drawLatency(data) {
  fill("latency", data.latency.slice().reverse(), (row) => [
    el("td", {}, minute(row.minute)), cell("transactions", row.transactions, num(row.transactions)),
    ...["p50_seconds", "p95_seconds", "p99_seconds", "max_seconds"].map((f) => cell(f, row[f], num(row[f], 3))),
  ], (row) => row.minute);
}

function drawGold(data) {
  fill("gold", data.gold, (row, tr) => {
    if (row.last_attempt_status === "failed") tr.className = "bad";
    return [
      el("td", { "data-field": "view_name" }, row.view_name), cell("age_seconds", row.age_seconds, num(row.age_seconds, 1)),
      cell("rows", row.rows, num(row.rows)), el("td", { "data-field": "current" }, row.current ? "yes" : "no"),
      el("td", { "data-field": "last_attempt_status" }, `${row.last_attempt_status || ""} ${time(row.last_attempt_at)}`),
      el("td", { "data-field": "last_skip_reason" }, row.last_skip_reason || ""),
      el("td", { "data-field": "last_failure_reason" }, row.last_failure_reason ? `${time(row.last_failed_at)} ${row.last_failure_reason}` : ""),
    ];
  }, (row) => row.view_name);
}

function drawAlerts(data) {
  document.getElementById("alerts-open").textContent = `(${data.alerts_open})`;
  document.getElementById("alerts-none").hidden = data.alerts.length > 0;
  fill("alerts", data.alerts, (row) => {
    const link = el("a", { href: `/status/runbook#${row.runbook.split("#")[1]}` }, row.runbook);
    const runbook = el("td", { "data-field": "runbook" });
    runbook.append(link);
    const severity = el("td", { "data-field": "severity" });
    severity.append(el("span", { class: `severity-${row.severity}` }, row.severity));
    return [
      severity, el("td", { "data-field": "rule" }, row.rule), el("td", { "data-field": "subject" }, row.subject),
      el("td", { "data-field": "message" }, row.message), el("td", {}, time(row.first_seen)),
      cell("count", row.count, num(row.count)), runbook,
    ];
  }, (row) => row.id);
}

function drawJobs(data) {
  fill("jobs", data.jobs, (row, tr) => {
    if (row.status === "failed") tr.className = "bad";
    return [
      el("td", { "data-field": "job_name" }, row.job_name), el("td", { "data-field": "status" }, row.status),
      el("td", {}, time(row.started_at)), cell("duration_seconds", row.duration_seconds, num(row.duration_seconds, 3)),
      cell("runs_last_hour", row.runs_last_hour, num(row.runs_last_hour)),
      cell("failures_last_hour", row.failures_last_hour, num(row.failures_last_hour)),
      el("td", { "data-field": "error" }, row.error || ""),
    ];
  }, (row) => row.job_name);
}

function setState(state, text) {
  const node = document.getElementById("state");
  node.dataset.state = state;
  node.textContent = text;
}

async function poll() {
  const secret = token();
  const headers = secret ? { Authorization: `Bearer ${secret}` } : {};
  try {
    const response = await fetch("/v1/status", { headers, cache: "no-store" });
    if (response.status === 401 || response.status === 403) {
      document.getElementById("token-form").hidden = false;
      setState("error", response.status === 401 ? "a read-scope token is needed" : "this token may not read");
      return;
    }
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const data = await response.json();
    document.getElementById("token-form").hidden = true;
    drawAlerts(data);
    drawThroughput(data);
    drawPartitions(data);
    drawLatency(data);
    drawGold(data);
    drawJobs(data);
    document.getElementById("as-of").textContent = `as of ${time(data.as_of)} UTC`;
    document.body.dataset.asOf = data.as_of;
    document.body.dataset.since = data.since;
    lastOk = Date.now();
    setState("live", "live");
  } catch (error) {
    const stale = lastOk && Date.now() - lastOk > STALE_AFTER_MS;
    setState(stale || !lastOk ? "stale" : "live", `no answer: ${error.message}`);
  }
}

document.getElementById("token-form").addEventListener("submit", (event) => {
  event.preventDefault();
  sessionStorage.setItem("scout-token", document.getElementById("token-input").value.trim());
  poll();
});

async function loop() {
  await poll();
  setTimeout(loop, POLL_MS);
}

loop();
