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

const p2 = (n) => String(n).padStart(2, "0");
const fmt = {
  dur(s) {
    if (s == null) return "—";
    s = Math.max(0, Math.floor(s));
    const d = Math.floor(s / 86400), h = Math.floor(s % 86400 / 3600), m = Math.floor(s % 3600 / 60), r = s % 60;
    return d ? `${d}d ${h}h ${m}m` : h ? `${h}h ${m}m ${r}s` : m ? `${m}m ${r}s` : `${r}s`;
  },
  ago(ts) { return ts == null ? "—" : fmt.dur(Date.now() / 1000 - ts) + " ago"; },
  // one time format everywhere: local 24-hour time, the zone shown once in the header (#tz)
  time(ts) { return ts == null ? "—" : fmt.day(ts) + " " + fmt.hms(ts); },
  day(ts) { const d = new Date(ts * 1000); return `${d.getFullYear()}-${p2(d.getMonth() + 1)}-${p2(d.getDate())}`; },
  hm(ts) { const d = new Date(ts * 1000); return `${p2(d.getHours())}:${p2(d.getMinutes())}`; },
  hms(ts) { return fmt.hm(ts) + ":" + p2(new Date(ts * 1000).getSeconds()); },
  zone() {
    const off = -new Date().getTimezoneOffset(), a = Math.abs(off);
    return "UTC" + (off < 0 ? "−" : "+") + p2(Math.floor(a / 60)) + ":" + p2(a % 60);
  },
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
  else if (n.last_exit) note = "last exit: " + exitWords(n.last_exit) + ", " + fmt.ago(n.last_exit.ts);
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
    const end = r.stopped_at == null ? "running" : exitWords(r);
    if (r.requested) li.classList.add("requested");
    li.append(el("strong", null, fmt.time(r.started_at)), document.createTextNode(` pid ${r.pid} · ${end}`));
    if (r.stopped_at != null) li.append(document.createTextNode(" after " + fmt.dur(r.stopped_at - r.started_at)));
    const why = r.requested ? null : (r.cause || causeNear(restarts.items, r.stopped_at));
    if (why) li.append(document.createTextNode(" · cause "), el("span", "cause", why));
    list.append(li);
  }
  drawTimeline(runs.items);
}

// an exit in words; an operator's stop or restart is "on request", never a red failure
function exitWords(x) {
  if (x.requested) return "stopped on request (" + x.requested + ")";
  if (x.signal != null) return "killed by signal " + x.signal + (SIGNALS[x.signal] ? " (" + SIGNALS[x.signal] + ")" : "");
  return x.exit_code === 0 ? "exited normally" : "exit code " + x.exit_code;
}
const SIGNALS = { 1: "SIGHUP", 2: "SIGINT", 6: "SIGABRT", 9: "SIGKILL", 11: "SIGSEGV", 15: "SIGTERM" };

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
    const rect = svgEl("rect", { x, y: 3, width: w, height: 18, fill: r.stopped_at == null ? "#3fb950" : (r.exit_code === 0 || r.requested ? "#4fa3ff" : "#f85149"), opacity: 0.8 });
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

// Lines over the time span that has data (a young run fills the chart instead of a few dots at its
// right edge); labels are HTML next to the SVG (the stretched SVG would squash its own text); hovering
// shows the values at that time; `empty` says why a chart has no line.
function drawChart(id, ts, lines, yMax, yFmt, empty) {
  const svg = $(id), fig = svg.closest("figure");
  svg.replaceChildren();
  const W = 600, H = 150, top = 6, bottom = 6;
  const has = (i) => lines.some((l) => l.values[i] != null);
  let lo = ts.findIndex((_, i) => has(i)), hi = ts.length - 1;
  while (hi >= 0 && !has(hi)) hi--;
  const now = fig.querySelector(".now"), axis = fig.querySelector(".axis");
  svg.onmousemove = null; svg.onmouseleave = null;
  if (lo < 0) {
    now.textContent = empty; axis.replaceChildren(); fig.classList.add("empty");
    return;
  }
  fig.classList.remove("empty");
  const max = yMax || Math.max(1, ...lines.flatMap((l) => l.values.filter((v) => v != null)));
  const span = Math.max(1, hi - lo);
  const x = (i) => lo === hi ? W / 2 : (i - lo) / span * W;
  const y = (v) => top + (1 - v / max) * (H - top - bottom);
  for (const l of lines) {
    // empty bins between samples are joined; a gap of more than 5 typical sample spacings (GSwarm was
    // not running) breaks the line
    const idx = []; for (let i = lo; i <= hi; i++) if (l.values[i] != null) idx.push(i);
    const steps = idx.slice(1).map((v, k) => v - idx[k]).sort((a, b) => a - b);
    const gap = Math.max(3, 5 * (steps.length ? steps[Math.floor(steps.length / 2)] : 1));
    let pts = [];
    const flush = () => {
      if (pts.length === 1) { const [cx, cy] = pts[0].split(","); svg.append(svgEl("circle", { cx, cy, r: 3, class: "dot " + l.cls })); }
      else if (pts.length) svg.append(svgEl("polyline", { points: pts.join(" "), class: l.cls }));
      pts = [];
    };
    idx.forEach((i, k) => {
      if (k && i - idx[k - 1] > gap) flush();
      pts.push(`${x(i).toFixed(1)},${y(l.values[i]).toFixed(1)}`);
    });
    flush();
  }
  const cursor = svgEl("line", { x1: 0, x2: 0, y1: 0, y2: H, class: "cursor", visibility: "hidden" });
  svg.append(cursor);
  const last = (l, i) => { for (let j = i; j >= lo; j--) if (l.values[j] != null) return l.values[j]; return null; };
  const valuesAt = (i) => lines.map((l) => { const v = last(l, i); return `${l.name} ${v == null ? "—" : l.show(v)}`; }).join(" · ");
  const latest = () => { let i = hi; return fmt.hms(ts[i]) + " · " + valuesAt(i); };
  now.textContent = latest();
  axis.replaceChildren(el("span", null, fmt.hm(ts[lo])), el("span", null, "max " + yFmt(max)), el("span", null, fmt.hm(ts[hi])));
  svg.onmousemove = (e) => {
    const r = svg.getBoundingClientRect(), f = Math.min(1, Math.max(0, (e.clientX - r.left) / r.width));
    const i = lo === hi ? lo : Math.round(lo + f * span);
    cursor.setAttribute("x1", x(i)); cursor.setAttribute("x2", x(i)); cursor.setAttribute("visibility", "visible");
    now.textContent = fmt.hms(ts[i]) + " · " + valuesAt(i);
  };
  svg.onmouseleave = () => { cursor.setAttribute("visibility", "hidden"); now.textContent = latest(); };
}

async function refreshCharts() {
  if (!S.node) return;
  const range = Number($("range").value), until = Date.now() / 1000;
  const m = await api(`/api/v1/nodes/${encodeURIComponent(S.node)}/metrics?points=120&since=${until - range}&until=${until}`);
  const s = m.series, pct = (v) => v.toFixed(0) + "%";
  const anySample = s.cpu_percent.some((v) => v != null) || s.host_cpu_percent.some((v) => v != null);
  const none = anySample ? "no data in this range" : "no samples yet in this range";
  drawChart("chart-cpu", m.ts, [{ name: "node", values: s.cpu_percent, cls: "a", show: pct },
    { name: "host", values: s.host_cpu_percent, cls: "b", show: pct }], null, pct, none);
  const rssMax = Math.max(1, ...s.rss_bytes.filter((v) => v != null));
  drawChart("chart-ram", m.ts, [{ name: "node RSS", values: s.rss_bytes.map((v) => v == null ? null : v / rssMax * 100), cls: "a",
    show: (v) => fmt.bytes(v / 100 * rssMax) }, { name: "host", values: s.host_mem_percent, cls: "b", show: pct }], 100,
    () => fmt.bytes(rssMax) + " / 100%", none);
  drawChart("chart-gpu", m.ts, [{ name: "util", values: s.gpu_util_percent, cls: "a", show: pct },
    { name: "memory", values: s.gpu_mem_percent, cls: "b", show: pct }], 100, pct,
    anySample ? "no NVIDIA GPU found (GSwarm reads GPUs through NVML; a CPU or Apple host has none to show)" : none);
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
  const rows = S.logs.filter((l) => !S.filter || S.filter(l.text)).slice(-500);
  box.replaceChildren(...rows.map((l) => {
    const row = el("div", l.level, (typeof l.ts === "number" ? fmt.hms(l.ts) + " " : "") + l.text);
    if (typeof l.ts === "number") row.title = fmt.time(l.ts) + " " + fmt.zone();
    return row;
  }));
  if (atEnd) box.scrollTop = box.scrollHeight;
}

// The log filter: plain text, any case (as `gswarm logs --grep` and the API's grep); /pattern/ is a
// regular expression, and an invalid one is said next to the field instead of silently showing everything.
function setFilter(text) {
  const box = $("log-filter"), msg = $("log-filter-msg");
  let problem = "";
  const re = /^\/(.+)\/$/.exec(text);
  if (!text) S.filter = null;
  else if (re) {
    try { const rx = new RegExp(re[1], "i"); S.filter = (t) => rx.test(t); }
    catch (err) { problem = "invalid pattern: " + err.message.replace(/^Invalid regular expression: /, ""); S.filter = () => false; }
  } else { const needle = text.toLowerCase(); S.filter = (t) => t.toLowerCase().includes(needle); }
  box.setCustomValidity(problem); box.classList.toggle("bad", !!problem);
  msg.textContent = problem; msg.hidden = !problem;
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
  $("log-filter").addEventListener("input", (e) => { setFilter(e.target.value); renderLogs(); });
  $("tz").textContent = "times: " + fmt.zone();
  setInterval(tickUptime, 1000);
  setInterval(() => refreshStatus().catch(() => {}), 30000);
  all().then(() => { document.body.dataset.ready = "1"; });
  stream();
}

document.addEventListener("DOMContentLoaded", init);
