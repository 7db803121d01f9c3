# ruff: noqa: E501 - the page is HTML and script kept as written, not wrapped Python
"""The dashboard's page: one self-contained HTML document (inline CSS and script,
nothing fetched from elsewhere). It opens a WebSocket back to the server, redraws
on every snapshot, and sends ``{"watch": NAME}`` when an agent is picked."""

from __future__ import annotations

import html
import json

__all__ = ["render_page"]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>swarm: __TITLE__</title>
<style>
body{font-family:system-ui,sans-serif;margin:1.2em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .4em} h2{font-size:1em;margin:1.2em 0 .3em}
.cards{display:flex;gap:.8em;flex-wrap:wrap}
.card{background:#fff;border:1px solid #ddd;border-radius:6px;padding:.5em .9em;min-width:7em}
.card b{display:block;font-size:1.5em}
table{border-collapse:collapse;background:#fff;font-size:.9em}
td,th{border:1px solid #ddd;padding:3px 8px;text-align:right} td:first-child,th:first-child{text-align:left}
.open{color:#b00;font-weight:bold} .half_open{color:#c60} .closed{color:#080}
#tail{background:#111;color:#eee;padding:.6em;white-space:pre-wrap;height:12em;overflow:auto;font-size:.85em}
#status{font-size:.8em;color:#666}
</style></head><body>
<h1>swarm: <span id="title">__TITLE__</span> <span id="status">connecting…</span></h1>
<div class="cards">
 <div class="card">elapsed<b id="elapsed">-</b></div>
 <div class="card">inputs done<b id="inputs">-</b></div>
 <div class="card">queued<b id="queued">-</b></div>
 <div class="card">in flight<b id="inflight">-</b></div>
 <div class="card">calls done<b id="done">-</b></div>
 <div class="card">failed<b id="failed">-</b></div>
 <div class="card">tokens/s<b id="tps">-</b></div>
 <div class="card">restarts<b id="restarts">-</b></div>
</div>
<h2>throughput (output tokens/s)</h2>
<svg id="chart" width="640" height="140" style="background:#fff;border:1px solid #ddd">
 <polyline id="line" fill="none" stroke="#1f77b4" stroke-width="2" points=""/>
 <text id="peak" x="6" y="14" font-size="11" fill="#666"></text>
</svg>
<h2>provider actors</h2>
<table id="providers"><thead><tr><th>provider</th><th>family</th><th>running</th>
<th>connecting</th><th>done</th><th>failed</th><th>retries</th><th>breakers</th></tr></thead>
<tbody></tbody></table>
<h2>rate-limit buckets</h2>
<table id="limits"><thead><tr><th>provider / model</th><th>rpm allowed</th><th>requests left</th>
<th>tpm allowed</th><th>tokens left</th><th>in flight</th><th>waits</th><th>429s</th></tr></thead>
<tbody></tbody></table>
<h2>agents (<span id="agentcount">0</span>; busiest first)</h2>
<table id="agents"><thead><tr><th>agent</th><th>busy</th><th>queued</th><th>replies</th>
<th>errors</th><th>turns</th><th>tool calls</th><th>restarts</th></tr></thead><tbody></tbody></table>
<h2>token stream of <select id="pick"><option value="">(pick an agent)</option></select></h2>
<div id="tail"></div>
<script>
"use strict";
// The WebSocket is on the host the browser used for this page (a dashboard on
// 0.0.0.0 is reached by its LAN name, not by the 127.0.0.1 the server sees).
const WS_URL = (location.protocol === "https:" ? "wss://" : "ws://") + location.hostname
  + ":" + __WS_PORT__ + "/ws" + __WS_QUERY__;
const history = [];
const fmt = v => v === null || v === undefined ? "-" : (typeof v === "number" ? Math.round(v).toLocaleString("en") : String(v));
function rows(id, items, cells) {
  const body = document.querySelector("#" + id + " tbody");
  body.innerHTML = "";
  for (const item of items) {
    const tr = document.createElement("tr");
    for (const c of cells(item)) {
      const td = document.createElement("td");
      if (c instanceof Node) td.appendChild(c); else td.textContent = c;
      tr.appendChild(td);
    }
    body.appendChild(tr);
  }
}
function breakers(b) {
  const span = document.createElement("span");
  for (const [model, state] of Object.entries(b)) {
    const s = document.createElement("span");
    s.className = state; s.textContent = model + " " + state.replace("_", "-") + " ";
    span.appendChild(s);
  }
  return span;
}
function draw(tps) {
  history.push(tps); if (history.length > 120) history.shift();
  const peak = Math.max(1, ...history);
  const pts = history.map((v, i) => (i * 640 / 119).toFixed(1) + "," + (135 - v / peak * 120).toFixed(1));
  document.getElementById("line").setAttribute("points", pts.join(" "));
  document.getElementById("peak").textContent = "peak " + fmt(peak) + " tok/s";
}
let agentsKnown = "";
function render(s) {
  document.getElementById("status").textContent = s.error ? s.error : "live";
  if (!s.calls) return;
  document.getElementById("elapsed").textContent = s.elapsed.toFixed(1) + " s";
  const inp = s.inputs || {};
  document.getElementById("inputs").textContent = inp.total ? (inp.answered + inp.failed) + "/" + inp.total : "-";
  document.getElementById("queued").textContent = fmt(s.calls.queued);
  document.getElementById("inflight").textContent = fmt(s.calls.in_flight);
  document.getElementById("done").textContent = fmt(s.calls.completed);
  document.getElementById("failed").textContent = fmt(s.calls.failed);
  document.getElementById("tps").textContent = fmt(s.tokens_per_second);
  document.getElementById("restarts").textContent = fmt(s.supervisor.restarts);
  draw(s.tokens_per_second);
  rows("providers", s.providers, p => [p.name, p.family, fmt(p.running), fmt(p.connecting), fmt(p.completed), fmt(p.failed), fmt(p.retries), breakers(p.breakers)]);
  rows("limits", s.rate_limits, l => [l.provider + " / " + l.model, fmt(l.rpm), fmt(l.rpm_available), fmt(l.tpm), fmt(l.tpm_available), fmt(l.inflight), fmt(l.waits), fmt(l.rate_limited)]);
  document.getElementById("agentcount").textContent = fmt(s.agent_count);
  rows("agents", s.agents, a => [a.name, fmt(a.busy), fmt(a.queued), fmt(a.replies), fmt(a.errors), fmt(a.turns), fmt(a.tool_calls), fmt(a.restarts)]);
  const names = s.agents.map(a => a.name).sort();
  if (names.join() !== agentsKnown) {
    agentsKnown = names.join();
    const pick = document.getElementById("pick"), chosen = pick.value;
    pick.innerHTML = '<option value="">(pick an agent)</option>';
    for (const n of names) { const o = document.createElement("option"); o.value = n; o.textContent = n; pick.appendChild(o); }
    pick.value = chosen;
  }
  const tail = document.getElementById("tail");
  if (s.watching) { tail.textContent = s.tail; tail.scrollTop = tail.scrollHeight; }
}
let socket;
function connect() {
  socket = new WebSocket(WS_URL);
  socket.onmessage = e => render(JSON.parse(e.data));
  socket.onclose = () => { document.getElementById("status").textContent = "disconnected (the run ended?)"; };
}
document.getElementById("pick").addEventListener("change", e => {
  if (socket && socket.readyState === 1) socket.send(JSON.stringify({watch: e.target.value}));
});
connect();
</script></body></html>
"""


def render_page(title: str, ws_port: int, ws_query: str = "") -> str:
    """The page; its script opens ``ws://<the page's host>:<ws_port>/ws<ws_query>``."""
    query = json.dumps(ws_query).replace("</", "<\\/")
    return (
        _PAGE.replace("__TITLE__", html.escape(title))
        .replace("__WS_PORT__", str(int(ws_port)))
        .replace("__WS_QUERY__", query)
    )
