"use strict";
/* landfall dashboard, shared parts: the token, API calls, DOM building (text only, never markup from data),
   formatting. Pages are in pages.js. */

const TOKEN_KEY = "landfall-token";

(function takeTokenFromLink() {
  const m = location.hash.match(/token=([^&]+)/);
  if (m) {
    localStorage.setItem(TOKEN_KEY, decodeURIComponent(m[1]));
    history.replaceState(null, "", location.pathname + location.search);
  }
})();

function token() { return localStorage.getItem(TOKEN_KEY) || ""; }

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, opts) {
  opts = opts || {};
  const headers = { Accept: "application/json" };
  if (token()) headers.Authorization = `Bearer ${token()}`;
  let body = opts.body;
  if (body !== undefined && !(body instanceof FormData)) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(body);
  }
  const resp = await fetch(path, { method: opts.method || "GET", headers, body });
  const text = await resp.text();
  let doc = null;
  try { doc = text ? JSON.parse(text, opts.asWritten ? asWritten : undefined) : null; } catch (e) { doc = { error: text }; }
  if (resp.status === 401) {
    tokenNeeded(doc && doc.error);
    throw new ApiError(401, (doc && doc.error) || "a token is needed");
  }
  if (!resp.ok) throw new ApiError(resp.status, (doc && doc.error) || `HTTP ${resp.status}`);
  if (opts.withLinks) return { doc, next: nextLink(resp.headers.get("Link")) };
  return doc;
}

/* A number as the API wrote it where the double JSON.parse makes of it would show another (a decimal's every digit,
   an integer past 2^53): the reviver is given each value's text (Chromium 114+, Firefox 135+, Safari 18.4+;
   elsewhere, the double). Only for values shown as they are (`api(path, {asWritten: true})`: table rows), never
   for numbers a page computes with. */
function asWritten(key, value, context) {
  const text = context && context.source;
  return typeof value === "number" && typeof text === "string" && String(value) !== text ? text : value;
}

function nextLink(header) {
  const m = header && header.match(/<([^>]+)>;\s*rel="next"/);
  return m ? m[1] : null;
}

/* h("a", {href: "/x", class: "c", onclick: fn}, "text", child, ...): children are nodes or plain text. */
function h(tag, attrs, ...kids) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k in el && typeof v !== "string") el[k] = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  append(el, kids);
  return el;
}

function append(el, kids) {
  for (const kid of kids.flat(Infinity)) {
    if (kid === null || kid === undefined || kid === false) continue;
    el.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return el;
}

function clear(el) { while (el.firstChild) el.removeChild(el.firstChild); return el; }

function notice(text, kind) {
  const box = document.getElementById("notice");
  if (!text) { box.hidden = true; return; }
  box.className = `notice ${kind || ""}`;
  clear(box).appendChild(document.createTextNode(text));
  box.hidden = false;
}

function tokenNeeded(message) {
  notice(`${message || "This call needs the server's token."} Paste the token in the field at the top right.`,
    "error");
  drawToken(true);
}

function drawToken(open) {
  const box = clear(document.getElementById("token"));
  if (token() && !open) {
    append(box, [
      h("span", { class: "state set", title: "calls carry the bearer token" }, "token set"),
      h("button", { onclick: () => { localStorage.removeItem(TOKEN_KEY); drawToken(); } }, "forget"),
    ]);
    return;
  }
  const input = h("input", { type: "password", placeholder: "bearer token", id: "token-input",
    autocomplete: "off" });
  const save = () => {
    if (!input.value.trim()) return;
    localStorage.setItem(TOKEN_KEY, input.value.trim());
    notice("");
    drawToken();
    if (window.refreshPage) window.refreshPage();
  };
  input.addEventListener("keydown", (e) => { if (e.key === "Enter") save(); });
  append(box, [h("span", { class: "state" }, "read-only"), input, h("button", { onclick: save }, "use token")]);
}

/* --- formatting ----------------------------------------------------------------------------------------- */

function fmtTime(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  const today = new Date().toDateString() === d.toDateString();
  const time = d.toLocaleTimeString([], { hour12: false });
  return today ? time : `${d.toLocaleDateString()} ${time}`;
}

function ago(iso) {
  if (!iso) return "";
  const s = (Date.now() - new Date(iso).getTime()) / 1000;
  if (s < 60) return `${Math.max(0, Math.round(s))} s ago`;
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function fmtNum(v) {
  if (v === null || v === undefined || v === "") return "";
  return Number(v).toLocaleString();
}

function fmtRate(v) {
  if (v === null || v === undefined) return "–";
  return v >= 100 ? Math.round(v).toLocaleString() : String(Math.round(v * 10) / 10);
}

function fmtBytes(n) {
  if (n === null || n === undefined) return "";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return i ? `${n.toFixed(1)} ${units[i]}` : `${n} B`;
}

function fmtAge(seconds) {
  if (seconds === null || seconds === undefined) return "–";
  if (seconds < 60) return `${Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${Math.round(seconds / 360) / 10} h`;
}

function badge(status) { return h("span", { class: `badge ${status}` }, status); }

function firstLine(text, max) {
  const line = (text || "").split("\n")[0];
  return line.length > (max || 160) ? line.slice(0, max || 160) + "…" : line;
}

function cell(v) {
  if (v === null || v === undefined) return h("span", { class: "null" }, "NULL");
  if (typeof v === "object") return JSON.stringify(v);
  return String(v);
}

/* dataTable([{label, get(row) -> node|text, num, cls}], rows, {empty, rowClass}) */
function dataTable(columns, rows, opts) {
  opts = opts || {};
  const table = h("table", { class: "data" },
    h("thead", {}, h("tr", {}, columns.map((c) => h("th", { class: c.num ? "num" : "" }, c.label)))));
  const body = h("tbody");
  if (!rows.length) {
    body.appendChild(h("tr", {}, h("td", { class: "empty", colspan: columns.length }, opts.empty || "nothing yet")));
  }
  for (const row of rows) {
    const tr = h("tr", { class: opts.rowClass ? opts.rowClass(row) : "" });
    for (const c of columns) tr.appendChild(h("td", { class: [c.num ? "num" : "", c.cls || ""].join(" ").trim() },
      c.get(row)));
    body.appendChild(tr);
  }
  table.appendChild(body);
  return h("div", { class: "scroll" }, table);
}

function panel(title, ...kids) {
  return h("section", { class: "panel" }, title ? h("h2", {}, title) : null, ...kids);
}

function card(label, value, sub, cls) {
  return h("div", { class: `card ${cls || ""}` }, h("div", { class: "label" }, label), h("div", { class: "value" }, value),
    sub ? h("div", { class: "sub" }, sub) : null);
}

function facts(pairs) {
  return h("div", { class: "facts" }, pairs.filter((p) => p).map(([k, v]) =>
    h("div", {}, h("div", { class: "k" }, k), h("div", { class: "v" }, v === null || v === undefined || v === "" ? "–" : v))));
}

function query(name) { return new URLSearchParams(location.search).get(name); }

function setQuery(params) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v) q.set(k, v);
  const s = q.toString();
  history.replaceState(null, "", location.pathname + (s ? `?${s}` : ""));
}

function pathPart(i) { return decodeURIComponent(location.pathname.split("/")[i] || ""); }

/* Run `draw` now and every `ms` while the page is visible; returns a stop function. */
function every(ms, draw) {
  let stopped = false, timer = null;
  const tick = async () => {
    if (stopped) return;
    if (!document.hidden) { try { await draw(); } catch (e) { showError(e); } }
    timer = setTimeout(tick, ms);
  };
  tick();
  return () => { stopped = true; clearTimeout(timer); };
}

function showError(e) {
  if (e instanceof ApiError && e.status === 401) return;
  notice(e.message || String(e), "error");
}

document.addEventListener("DOMContentLoaded", () => {
  const page = document.body.dataset.page;
  for (const a of document.querySelectorAll("header nav a")) {
    if ((a.dataset.nav || "").split(" ").includes(page)) a.classList.add("active");
  }
  drawToken();
});
