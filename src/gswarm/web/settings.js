/* GSwarm dashboard, settings view: every option grouped with meaning, default, value and source
   (GET /api/v1/config/options); edits are checked by the server with the CLI's rules (POST /api/v1/config/check,
   errors shown next to the field), shown as a diff, then saved (PATCH /api/v1/config) to apply on the next
   restart, or saved and the node restarted now. Read-only `gswarm serve`: no edit controls, no start/stop/restart.
   Kept apart from app.js; uses its api(), el() and S (loaded after it). */
"use strict";
const SV = { view: null, pending: null };

function showValue(v) { return v == null ? "—" : (typeof v === "object" ? JSON.stringify(v) : String(v)); }
function inputText(v) { return v == null ? "" : (typeof v === "object" ? JSON.stringify(v) : String(v)); }

function editorFor(o) {
  let input;
  if (o.kind === "bool" || o.kind === "choice") {
    input = el("select");
    const opts = o.kind === "bool" ? ["true", "false"] : (o.value == null ? [""] : []).concat(o.choices.map(String));
    for (const c of opts) { const op = el("option", null, c === "" ? "(none)" : c); op.value = c; input.append(op); }
  } else {
    input = el("input"); input.type = "text"; input.autocomplete = "off";
    if (o.kind === "duration") input.placeholder = "e.g. 90s, 30m, 1h30m";
  }
  input.value = inputText(o.pending !== undefined ? o.pending : o.value);
  input.dataset.initial = input.value; input.dataset.name = o.name; input.id = "opt-" + o.name;
  input.setAttribute("aria-label", o.name);
  return input;
}

function renderSettings(view) {
  SV.view = view;
  const box = $("settings-body"); box.replaceChildren();
  $("settings-mode").textContent = view.editable ? "changes apply on the next restart of the node, or now if you restart it"
    : (view.live ? "the saved override file is unusable: " + view.override_error : "read-only (gswarm serve): no changes here");
  $("settings-precedence").textContent = "Precedence: " + view.precedence;
  let group = null, table = null;
  for (const o of view.options) {
    if (o.group !== group) {
      group = o.group; box.append(el("h3", null, group));
      table = el("table", "settings"); box.append(table);
    }
    const tr = el("tr"); tr.id = "row-" + o.name;
    const name = el("td", "opt"); name.append(el("strong", null, o.name), el("div", "muted", o.description));
    const val = el("td", "val");
    val.append(el("div", null, showValue(o.value)), el("div", "muted src", o.source));
    if (o.pending !== undefined) val.append(el("div", "pending", "next start: " + showValue(o.pending)));
    const edit = el("td", "edit");
    if (view.editable && !o.locked && !o.secret) edit.append(editorFor(o));
    else if (o.locked) edit.append(el("span", "muted", "env / file only"));
    edit.append(el("div", "field-error")); edit.lastChild.id = "err-" + o.name;
    tr.append(name, el("td", "muted def", "default " + showValue(o.default)), val, edit);
    table.append(tr);
  }
  $("settings-review").hidden = !view.editable;
}

function parseInput(input, o) {
  const t = input.value.trim();
  if (o.kind === "bool") return t === "true";
  if (o.kind === "choice") return t === "" ? null : t;
  if (t === "") return null;
  if (o.kind === "int" || o.kind === "float" || o.kind === "duration") return /^-?\d+(\.\d+)?$/.test(t) ? Number(t) : t;
  if (o.kind === "list" || o.kind === "dict") return JSON.parse(t);
  return t;
}

function changedOptions() {
  const changes = {}, bad = {};
  for (const input of document.querySelectorAll("#settings-body [data-name]")) {
    if (input.value === input.dataset.initial) continue;
    const o = SV.view.options.find((x) => x.name === input.dataset.name);
    try { changes[o.name] = parseInput(input, o); } catch (e) { bad[o.name] = "not valid JSON: " + e.message; }
  }
  return { changes, bad };
}

function showErrors(errors) {
  for (const e of document.querySelectorAll("#settings-body .field-error")) e.textContent = "";
  for (const [name, msg] of Object.entries(errors)) {
    const box = $("err-" + name.split(".")[0]);
    if (box) box.textContent = msg;
  }
}

async function reviewSettings() {
  const { changes, bad } = changedOptions();
  showErrors(bad);
  const msg = $("settings-msg");
  if (Object.keys(bad).length) { msg.textContent = "fix the fields marked in red"; return; }
  if (!Object.keys(changes).length) { msg.textContent = "nothing changed"; return; }
  const res = await fetch("/api/v1/config/check", { method: "POST", body: JSON.stringify(changes),
    headers: { ...headers(), "Content-Type": "application/json" } });
  const body = await res.json().catch(() => ({}));
  if (res.status === 401 || res.status === 403) { askToken(body.error); msg.textContent = "checking changes needs the API token"; return; }
  if (res.status === 422) {
    const errs = {}; for (const d of body.detail || []) errs[d.field] = d.message;
    showErrors(errs); msg.textContent = body.error || "invalid value"; return;
  }
  if (!res.ok) { msg.textContent = "check failed: " + (body.error || res.statusText); return; }
  showErrors({}); msg.textContent = "";
  SV.pending = changes;
  const list = $("settings-diff-list"); list.replaceChildren();
  for (const c of body.changes) list.append(el("li", null, `${c.name}: ${showValue(c.old)} → ${showValue(c.new)}`));
  if (!body.changes.length) list.append(el("li", "muted", "no effective change"));
  $("settings-diff").showModal();
}

async function applySettings(restartNow) {
  const msg = $("settings-msg");
  try {
    await api("/api/v1/config", { method: "PATCH", body: JSON.stringify(SV.pending), headers: { "Content-Type": "application/json" } });
    msg.textContent = "saved: applies on the next restart";
    if (restartNow && S.node) {
      await api(`/api/v1/nodes/${encodeURIComponent(S.node)}/restart`, { method: "POST" });
      msg.textContent = "saved; restart requested";
    }
  } catch (e) { msg.textContent = "not saved: " + e.message; }
  await loadSettings();
}

async function loadSettings() {
  const view = await api("/api/v1/config/options");
  renderSettings(view);
  const controls = document.querySelector("#node-card .controls");
  if (controls) controls.hidden = !view.live;  // read-only serve cannot start/stop/restart
  document.body.dataset.settings = "1";
}

function initSettings() {
  $("settings-review").addEventListener("click", () => reviewSettings().catch((e) => { $("settings-msg").textContent = e.message; }));
  $("settings-diff").addEventListener("close", () => {
    const v = $("settings-diff").returnValue;
    if (v === "later" || v === "now") applySettings(v === "now");
  });
  loadSettings().catch((e) => { $("settings-msg").textContent = "settings unavailable: " + e.message; });
}

document.addEventListener("DOMContentLoaded", initSettings);
