/* GSwarm dashboard: plain JS, no dependencies. Reads /api/v1, listens to /api/v1/events/stream
   (fetch + ReadableStream so a bearer token can be sent), draws charts as inline SVG. */
"use strict";
const $ = (id) => document.getElementById(id);
const S = { token: sessionStorage.getItem("gswarm-token") || "", node: null, status: null, fetchedAt: 0,
            logs: [], filter: null, timers: {}, nodes: [] };

function headers() { return S.token ? { Authorization: "Bearer " + S.token } : {}; }

async function api(path, opts = {}) {
  const res = await fetch(path, { ...opts, headers: { ...headers(), ...(opts.headers || {}) } });
  let body = null;
  try { body = await res.json(); } catch (e) { body = null; }
  if (res.status === 401 || res.status === 403) askToken(body && body.error);
  if (!res.ok && res.status !== 202) { const err = new Error((body && body.error) || res.statusText); err.status = res.status; throw err; }
  return body;
}

function askToken(msg) {
  $("auth").open = true;
  $("auth-msg").textContent = (msg || "A token is needed") + " — paste the API token (kept in this tab only).";
}

const fmt = {
  dur(s) {
    if (s == null) return "—";
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
  },
  ago(ts) { return ts == null ? "—" : fmt.dur(Date.now() / 1000 - ts) + " ago"; },
  time(ts) { return ts == null ? "—" : new Date(ts * 1000).toLocaleString(); },
  hm(ts) { return new Date(ts * 1000).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }); },
  hms(ts) { return new Date(ts * 1000).toLocaleTimeString([], { hour12: false }); },
  bytes(b) {
    if (b == null) return "—";
    const u = ["B", "KiB", "MiB", "GiB", "TiB"]; let i = 0;
    while (b >= 1024 && i < u.length - 1) { b /= 1024; i++; }
    return (i ? b.toFixed(1) : b) + " " + u[i];
  },
  val(v) { return v == null ? "—" : String(v); },
};

function el(tag, cls, text) { const e = document.createElement(tag); if (cls) e.className = cls; if (text != null) e.textContent = text; return e; }

/* ---------- node card ---------- */
async function refreshStatus() {
  const st = await api("/api/v1/status");
  S.status = st; S.fetchedAt = Date.now() / 1000;
  $("source").textContent = st.source === "live" ? "live supervisor" : "read-only (gswarm serve)";
  const names = st.nodes.map((n) => n.node);
  if (!S.node || !names.includes(S.node)) S.node = names[0] || null;
  const sel = $("node-select");
  if (names.join() !== S.nodes.join()) {
    S.nodes = names; sel.replaceChildren(...names.map((n) => { const o = el("option", null, n); o.value = n; return o; }));
    sel.hidden = names.length < 2;
  }
  sel.value = S.node;
  renderOverview(st.nodes);
  renderMaintenance(st.maintenance);
  renderNode(st.nodes.find((n) => n.node === S.node), st.source === "live");
}

/* ---------- overview: one card per node (shown when the host runs several) ---------- */
function renderOverview(nodes) {
  const box = $("node-cards");
  $("overview").hidden = nodes.length < 2;
  if (nodes.length < 2) { box.replaceChildren(); return; }
  box.replaceChildren(...nodes.map((n) => {
    const card = el("button", "node-tile" + (n.node === S.node ? " selected" : ""));
    card.type = "button"; card.dataset.node = n.node; card.title = "show " + n.node + " below";
    const p = n.progress || {}, s = n.sample || {}, gpus = (s.gpu || []).map((g) => g.index).join(",");
    card.append(el("strong", "tile-name", n.node), el("span", "state " + (n.state || ""), n.state || "unknown"));
    const facts = el("span", "muted tile-facts");
    facts.textContent = `up ${fmt.dur(n.uptime)} · restarts ${fmt.val(n.restarts)} · round ${fmt.val(p.round)}` +
      (p.stage != null ? "/" + p.stage : "") + (gpus ? " · GPU " + gpus : "") +
      (n.last_incident ? " · last " + n.last_incident.category : "");
    card.append(facts);
    card.addEventListener("click", () => { S.node = n.node; all(); $("node-card").scrollIntoView({ block: "start" }); });
    return card;
  }));
}

function renderMaintenance(m) {
  const b = $("maintenance");
  b.hidden = !m;
  b.textContent = m ? `Maintenance until ${fmt.hm(m.until)}${m.reason ? " (" + m.reason + ")" : ""} — restarts and alerts paused` : "";
  if (m) b.title = fmt.time(m.until);
}

/* start only from STOPPED/FATAL/BACKOFF, stop not when STOPPED/FATAL (the API answers 409 otherwise) */
const FITS = { start: (s) => ["STOPPED", "FATAL", "BACKOFF"].includes(s), stop: (s) => !["STOPPED", "FATAL"].includes(s),
               restart: () => true };

function renderNode(n, live) {
  if (!n) return;
  $("node-name").textContent = n.node;
  const state = $("state"); state.textContent = n.state || "unknown"; state.className = "state " + (n.state || "");
  let note = "";
  if (n.fatal_reason) note = n.fatal_reason;
  else if (n.next_restart_at) note = "restart at " + fmt.time(n.next_restart_at);
  else if (n.last_exit) note = "last exit " + (n.last_exit.signal != null ? "signal " + n.last_exit.signal : "code " + n.last_exit.exit_code) + ", " + fmt.ago(n.last_exit.ts);
  $("state-note").textContent = note;
  $("pid").textContent = fmt.val(n.pid);
  $("generation").textContent = fmt.val(n.generation) + (n.mode ? " (" + n.mode + ")" : "");
  $("restarts").textContent = fmt.val(n.restarts);
  const p = n.progress || {};
  $("round").textContent = fmt.val(p.round) + (p.round_total ? " / " + p.round_total : "");
  $("stage").textContent = fmt.val(p.stage);
  $("animal").textContent = fmt.val(p.animal);
  $("last-advance").textContent = fmt.ago(n.last_advance);
  $("last-advance").title = fmt.time(n.last_advance);
  for (const b of document.querySelectorAll(".controls button"))
    b.disabled = !live || !n.supervised || (n.state != null && !FITS[b.dataset.command](n.state));
  tickUptime();
}

function tickUptime() {
  const st = S.status; if (!st) return;
  const n = st.nodes.find((x) => x.node === S.node); if (!n) return;
  const running = n.uptime != null && ["RUNNING", "STALLED", "DEGRADED"].includes(n.state);
  $("uptime").textContent = running ? fmt.dur(n.uptime + (Date.now() / 1000 - S.fetchedAt)) : "—";
  if (n.last_advance != null) $("last-advance").textContent = fmt.ago(n.last_advance);
}

/* ---------- restarts timeline ---------- */
async function refreshRuns() {
  if (!S.node) return;
  const q = "node=" + encodeURIComponent(S.node);
  const [runs, restarts] = await Promise.all([api("/api/v1/runs?limit=30&" + q), api("/api/v1/events?kind=restart&limit=30&" + q)]);
  const list = $("runs"); list.replaceChildren();
  for (const r of runs.items) {
    const li = el("li"); li.dataset.pid = r.pid; li.dataset.runId = r.id;
    const end = r.stopped_at == null ? "running" : (r.signal != null ? "killed by signal " + r.signal : "exit code " + r.exit_code);
    li.append(el("strong", null, fmt.time(r.started_at)), document.createTextNode(` pid ${r.pid} · ${end}`));
    if (r.stopped_at != null) li.append(document.createTextNode(" after " + fmt.dur(r.stopped_at - r.started_at)));
    const why = r.cause || causeNear(restarts.items, r.stopped_at);
    if (why) li.append(document.createTextNode(" · cause "), el("span", "cause", why));
    list.append(li);
  }
  drawTimeline(runs.items);
}

function causeNear(restarts, ts) {
  if (ts == null) return null;
  // a restart is scheduled right after the exit it answers (never before it)
  const hit = restarts.find((e) => e.ts >= ts && e.ts - ts < 5);
  return hit && hit.data ? hit.data.cause : null;
}

function drawTimeline(runs) {
  const svg = $("timeline"); svg.replaceChildren();
  if (!runs.length) return;
  const now = Date.now() / 1000, t0 = Math.min(...runs.map((r) => r.started_at)), span = Math.max(1, now - t0);
  for (const r of runs) {
    const x = (r.started_at - t0) / span * 600, w = Math.max(2, ((r.stopped_at || now) - r.started_at) / span * 600);
    const rect = svgEl("rect", { x, y: 3, width: w, height: 18, fill: r.stopped_at == null ? "#3fb950" : (r.exit_code === 0 ? "#4fa3ff" : "#f85149"), opacity: 0.8 });
    rect.append(svgEl("title", {}, `pid ${r.pid}: ${fmt.time(r.started_at)}`));
    svg.append(rect);
  }
}

/* ---------- incidents ---------- */
async function refreshIncidents() {
  if (!S.node) return;
  const inc = await api("/api/v1/incidents?limit=10&node=" + encodeURIComponent(S.node));
  const list = $("incidents"); list.replaceChildren();
  if (!inc.items.length) list.append(el("li", "muted", "No incidents."));
  for (const i of inc.items) {
    const li = el("li");
    li.append(el("strong", "sev-" + i.severity, i.category), document.createTextNode(` · ${i.severity} · ${fmt.time(i.ts)}`));
    if (i.advice) li.append(el("div", "advice", i.advice));
    if (i.evidence && i.evidence.length) {
      const d = el("details"); d.append(el("summary", "muted", "evidence"), el("pre", "log", i.evidence.join("\n"))); li.append(d);
    }
    list.append(li);
  }
}

/* ---------- charts ---------- */
function svgEl(tag, attrs, text) {
  const e = document.createElementNS("http://www.w3.org/2000/svg", tag);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

function drawChart(svg, ts, lines, yMax, yFmt) {
  svg.replaceChildren();
  const W = 600, H = 150, top = 14, bottom = 14;
  const max = yMax || Math.max(1, ...lines.flatMap((l) => l.values.filter((v) => v != null)));
  const x = (i) => ts.length < 2 ? 0 : i / (ts.length - 1) * W;
  const y = (v) => top + (1 - v / max) * (H - top - bottom);
  for (const l of lines) {
    let pts = [];
    const flush = () => {
      if (pts.length === 1) { const [cx, cy] = pts[0].split(","); svg.append(svgEl("circle", { cx, cy, r: 3, class: "dot " + l.cls })); }
      else if (pts.length) svg.append(svgEl("polyline", { points: pts.join(" "), class: l.cls }));
      pts = [];
    };
    l.values.forEach((v, i) => { if (v == null) flush(); else pts.push(`${x(i).toFixed(1)},${y(v).toFixed(1)}`); });
    flush();
  }
  svg.append(svgEl("text", { x: 4, y: 11 }, yFmt(max)));
  if (ts.length) {
    svg.append(svgEl("text", { x: 4, y: H - 2 }, fmt.hm(ts[0])));
    svg.append(svgEl("text", { x: W - 4, y: H - 2, "text-anchor": "end" }, fmt.hm(ts[ts.length - 1])));
  }
  const has = lines.some((l) => l.values.some((v) => v != null));
  if (!has) svg.append(svgEl("text", { x: W / 2 - 30, y: H / 2 }, "no data"));
}

async function refreshCharts() {
  if (!S.node) return;
  const range = Number($("range").value), until = Date.now() / 1000;
  const m = await api(`/api/v1/nodes/${encodeURIComponent(S.node)}/metrics?points=120&since=${until - range}&until=${until}`);
  const s = m.series, pct = (v) => v.toFixed(0) + "%";
  drawChart($("chart-cpu"), m.ts, [{ values: s.cpu_percent, cls: "a" }, { values: s.host_cpu_percent, cls: "b" }], null, pct);
  const rssMax = Math.max(1, ...s.rss_bytes.filter((v) => v != null));
  drawChart($("chart-ram"), m.ts, [{ values: s.rss_bytes.map((v) => v == null ? null : v / rssMax * 100), cls: "a" },
    { values: s.host_mem_percent, cls: "b" }], 100, () => fmt.bytes(rssMax) + " / 100%");
  drawChart($("chart-gpu"), m.ts, [{ values: s.gpu_util_percent, cls: "a" }, { values: s.gpu_mem_percent, cls: "b" }], 100, pct);
}

/* ---------- logs ---------- */
function logText(r) { return r.message != null ? r.message : (r.text != null ? r.text : JSON.stringify(r)); }

async function refreshLogs() {
  const q = S.node ? "&node=" + encodeURIComponent(S.node) : "";
  const res = await api("/api/v1/logs?tail=300" + q);
  S.logs = res.lines.map((r) => ({ ts: r.ts_unix, level: r.level || "info", text: logText(r) }));
  renderLogs();
}

function addLog(r) {
  if (S.node && r.node && r.node !== S.node) return;
  S.logs.push({ ts: r.ts_unix || r.ts, level: r.level || (r.stream === "stderr" ? "warning" : "info"), text: logText(r) });
  if (S.logs.length > 1000) S.logs.splice(0, S.logs.length - 1000);
  if (!S.logTimer) S.logTimer = setTimeout(() => { S.logTimer = null; renderLogs(); }, 200);  // at most 5 renders/s
}

function renderLogs() {
  const box = $("log"), atEnd = box.scrollTop + box.clientHeight >= box.scrollHeight - 20;
  const rows = S.logs.filter((l) => !S.filter || S.filter.test(l.text)).slice(-500);
  box.replaceChildren(...rows.map((l) => el("div", l.level, (typeof l.ts === "number" ? fmt.hms(l.ts) + " " : "") + l.text)));
  if (atEnd) box.scrollTop = box.scrollHeight;
}

/* ---------- control ---------- */
function confirmDialog(text) {
  return new Promise((resolve) => {
    const d = $("confirm"); $("confirm-text").textContent = text;
    d.addEventListener("close", () => resolve(d.returnValue === "ok"), { once: true });
    d.showModal();
  });
}

async function control(cmd) {
  if (!(await confirmDialog(`${cmd[0].toUpperCase() + cmd.slice(1)} node ${S.node}?`))) return;
  const msg = $("control-msg");
  try {
    await api(`/api/v1/nodes/${encodeURIComponent(S.node)}/${cmd}`, { method: "POST" });
    msg.textContent = `${cmd} requested at ${new Date().toLocaleTimeString()}`;
  } catch (e) { msg.textContent = `${cmd} refused: ${e.message}`; }
}

/* ---------- live updates ---------- */
function soon(name, fn, ms) {
  if (S.timers[name]) return;
  S.timers[name] = setTimeout(() => { S.timers[name] = null; fn().catch(() => {}); }, ms);
}

function onEvent(type, data) {
  if (type === "log") return addLog(data);
  if (["state", "start", "exit", "restart", "recovery", "notice"].includes(type)) {
    soon("status", refreshStatus, 150); soon("runs", refreshRuns, 300);
  } else if (type === "incident") soon("incidents", refreshIncidents, 300);
  else if (type === "progress") soon("status", refreshStatus, 500);
  else if (type === "sample") soon("charts", refreshCharts, 5000);
}

async function stream() {
  const conn = $("conn");
  for (;;) {
    try {
      const res = await fetch("/api/v1/events/stream", { headers: headers() });
      if (res.status === 401 || res.status === 403) { askToken(); throw new Error("auth"); }
      if (!res.ok || !res.body) throw new Error("stream " + res.status);
      conn.textContent = "live"; conn.className = "pill on";
      const reader = res.body.getReader(), dec = new TextDecoder();
      let buf = "";
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        buf += dec.decode(value, { stream: true });
        let cut;
        while ((cut = buf.indexOf("\n\n")) >= 0) {
          const frame = buf.slice(0, cut); buf = buf.slice(cut + 2);
          let type = "message", data = "";
          for (const line of frame.split("\n")) {
            if (line.startsWith("event: ")) type = line.slice(7);
            else if (line.startsWith("data: ")) data += line.slice(6);
          }
          if (data) { try { onEvent(type, JSON.parse(data)); } catch (e) { /* ignore a bad frame */ } }
        }
      }
    } catch (e) { /* reconnect below */ }
    conn.textContent = "offline"; conn.className = "pill off";
    await new Promise((r) => setTimeout(r, 2000));
  }
}

/* ---------- wiring ---------- */
function all() { return Promise.allSettled([refreshStatus().then(() => Promise.allSettled([refreshRuns(), refreshIncidents(), refreshCharts(), refreshLogs()]))]); }

function init() {
  $("token").value = S.token;
  $("token-form").addEventListener("submit", (e) => {
    e.preventDefault(); S.token = $("token").value.trim();
    sessionStorage.setItem("gswarm-token", S.token); $("auth").open = false; all();
  });
  for (const b of document.querySelectorAll(".controls button")) b.addEventListener("click", () => control(b.dataset.command));
  $("range").addEventListener("change", () => refreshCharts().catch(() => {}));
  $("node-select").addEventListener("change", (e) => { S.node = e.target.value; all(); });
  $("log-filter").addEventListener("input", (e) => {
    try { S.filter = e.target.value ? new RegExp(e.target.value, "i") : null; e.target.setCustomValidity(""); }
    catch (err) { e.target.setCustomValidity("invalid regex"); S.filter = null; }
    renderLogs();
  });
  setInterval(tickUptime, 1000);
  setInterval(() => refreshStatus().catch(() => {}), 30000);
  all().then(() => { document.body.dataset.ready = "1"; });
  stream();
}

document.addEventListener("DOMContentLoaded", init);
