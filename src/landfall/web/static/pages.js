"use strict";
/* landfall dashboard pages. Each reads the JSON API (app.js `api`) and draws with `h` (text only). */

const STATUSES = ["queued", "running", "succeeded", "failed", "dead", "skipped", "unrouted"];
const PAGES = {};
const main = () => document.getElementById("main");

function runLink(r, text) { return h("a", { href: `/runs/${encodeURIComponent(r.run_id)}` }, text || r.file_id); }
function tableLink(name) { return h("a", { href: `/tables/${encodeURIComponent(name)}` }, name); }

/* --- overview -------------------------------------------------------------------------------------------- */

PAGES.overview = () => {
  let minutes = Number(query("minutes")) || 60;
  const body = h("div");
  const pick = h("select", { id: "window", onchange: () => { minutes = Number(pick.value); setQuery({ minutes }); draw(); } },
    [15, 60, 360, 1440].map((m) => h("option", { value: m, selected: m === minutes }, m < 60 ? `last ${m} min` : `last ${m / 60} h`)));
  append(clear(main()), [
    h("div", { class: "head" }, h("div", {}, h("h1", {}, "Overview"),
      h("div", { class: "muted small", id: "updated" }, "")), pick),
    body,
  ]);
  const draw = async () => {
    const [ov, st] = await Promise.all([api(`/api/overview?minutes=${minutes}`), api("/api/streams")]);
    const c = ov.counts, b = ov.backlog;
    const labels = ov.minutes.map((m) => new Date(m.minute).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", hour12: false }));
    const lat = ov.latency_seconds;
    append(clear(body), [
      h("div", { class: "cards" },
        card("Files / min", fmtRate(ov.files_per_minute), `${fmtNum(c.succeeded)} loaded in the window`),
        card("Rows / min", fmtRate(ov.rows_per_minute)),
        card("Succeeded", fmtNum(c.succeeded), null, "ok"),
        card("Failed", fmtNum(c.failed), "attempts to be retried", c.failed ? "bad" : ""),
        card("Dead", fmtNum(c.dead), h("a", { href: "/dead-letters" }, `${fmtNum(ov.dead_letters)} on the dead-letter list`), c.dead ? "bad" : ""),
        card("Backlog", fmtNum(b.queued + b.running), `${fmtNum(b.queued)} queued · oldest ${fmtAge(b.oldest_queued_age_seconds)}`),
        card("Land → committed", lat.p50 === null ? "–" : fmtSeconds(lat.p50), lat.p95 === null ? "p50" : `p50 · p95 ${fmtSeconds(lat.p95)}`)),
      h("div", { class: "grid2" },
        panel("Throughput", h("span", { class: "muted small" }, "files per minute"),
          chart({ labels, title: "files per minute", integer: true, yFormat: (v) => fmtNum(v), series: [
            { name: "loaded", values: ov.minutes.map((m) => m.files), color: "#2563eb" },
            { name: "failed", values: ov.minutes.map((m) => m.failed), color: "#dc2626" }] }),
          h("div", { class: "legend" }, h("span", {}, h("i", { class: "swatch-a" }), "loaded"), h("span", {}, h("i", { class: "swatch-b" }), "failed or dead"))),
        panel("Run durations", h("span", { class: "muted small" }, "per minute, seconds"),
          chart({ labels, title: "run durations", yFormat: (v) => fmtSeconds(v), series: [
            { name: "p50", values: ov.minutes.map((m) => m.duration_p50), color: "#16a34a", kind: "line" },
            { name: "p95", values: ov.minutes.map((m) => m.duration_p95), color: "#f59e0b", kind: "line" }] }),
          h("div", { class: "legend" }, h("span", {}, h("i", { class: "swatch-c" }), "p50"), h("span", {}, h("i", { class: "swatch-d" }), "p95")))),
      panel("Workflows", dataTable([
        { label: "workflow", get: (w) => w.workflow ? h("a", { href: `/runs?workflow=${encodeURIComponent(w.workflow)}` }, w.workflow) : h("span", { class: "muted" }, "(unrouted)") },
        { label: "succeeded", num: true, get: (w) => fmtNum(w.succeeded) },
        { label: "failed", num: true, get: (w) => fmtNum(w.failed) },
        { label: "dead", num: true, get: (w) => fmtNum(w.dead) },
        { label: "queued", num: true, get: (w) => fmtNum(w.queued) },
        { label: "running", num: true, get: (w) => fmtNum(w.running) },
        { label: "oldest queued", num: true, get: (w) => fmtAge(w.oldest_queued_age_seconds) },
        { label: "files/min", num: true, get: (w) => fmtRate(w.files_per_minute) },
        { label: "rows/min", num: true, get: (w) => fmtRate(w.rows_per_minute) },
        { label: "latency p50 / p95", num: true, get: (w) => w.latency_seconds.p50 === null ? "–" : `${fmtSeconds(w.latency_seconds.p50)} / ${fmtSeconds(w.latency_seconds.p95)}` },
        { label: "duration p50 / p95", num: true, get: (w) => w.duration_seconds.p50 === null ? "–" : `${fmtSeconds(w.duration_seconds.p50)} / ${fmtSeconds(w.duration_seconds.p95)}` },
      ], ov.workflows, { empty: "no runs in this window" })),
      st.streams.length ? panel("Streams", h("span", { class: "muted small" }, "since this server started"), dataTable([
        { label: "stream", get: (s) => s.name },
        { label: "lands under", get: (s) => s.prefix },
        { label: "accepted", num: true, get: (s) => fmtNum(s.records.accepted) },
        { label: "errored", num: true, get: (s) => fmtNum(s.records.errored) },
        { label: "refused", num: true, get: (s) => fmtNum(s.records.refused) },
        { label: "calls refused", num: true, get: (s) => fmtNum(s.calls_refused.throttled + s.calls_refused.disk) },
        { label: "files landed", num: true, get: (s) => fmtNum(s.files_landed) },
        { label: "waiting", num: true, get: (s) => fmtBytes(s.unflushed_bytes) },
        { label: "oldest waiting", num: true, get: (s) => s.unflushed_bytes ? fmtAge(s.oldest_unflushed_age_seconds) : "–" },
        { label: "log", get: (s) => h("span", { class: `badge ${s.log === "ok" ? "succeeded" : "dead"}`, title: s.log }, s.log === "ok" ? "ok" : "refusing") },
      ], st.streams, { rowClass: () => "stream" })) : null,
    ]);
    document.getElementById("updated").textContent = `updated ${fmtTime(ov.generated_at)} · every 10 s`;
  };
  window.refreshPage = draw;
  every(10000, draw);
};

/* --- runs ------------------------------------------------------------------------------------------------ */

PAGES.runs = () => {
  const state = { status: query("status") || "", workflow: query("workflow") || "", file: query("file") || "", before: query("before") || "" };
  const seen = new Set();
  let first = true;
  const status = h("select", { id: "f-status" }, h("option", { value: "" }, "any status"), STATUSES.map((s) => h("option", { value: s, selected: s === state.status }, s)));
  const workflow = h("input", { type: "search", id: "f-workflow", placeholder: "workflow", value: state.workflow });
  const file = h("input", { type: "search", id: "f-file", placeholder: "file (prefix/name)", value: state.file });
  const live = h("input", { type: "checkbox", checked: true, id: "f-live" });
  const list = h("div");
  const pager = h("div", { class: "pager" });
  const apply = () => {
    Object.assign(state, { status: status.value, workflow: workflow.value.trim(), file: file.value.trim(), before: "" });
    first = true; seen.clear(); draw();
  };
  status.addEventListener("change", apply);
  for (const el of [workflow, file]) el.addEventListener("keydown", (e) => { if (e.key === "Enter") apply(); });
  append(clear(main()), [
    h("div", { class: "head" }, h("div", {}, h("h1", {}, "Runs"), h("div", { class: "muted small" }, "newest first")),
      h("label", { class: "check" }, live, "live")),
    h("div", { class: "filters" }, status, workflow, file, h("button", { onclick: apply }, "filter")),
    panel(null, list, pager),
  ]);
  const draw = async () => {
    setQuery(state);
    const params = new URLSearchParams({ limit: 50 });
    for (const k of ["status", "workflow", "file", "before"]) if (state[k]) params.set(k, state[k]);
    const { doc: runs, next } = await api(`/api/runs?${params}`, { withLinks: true });
    const fresh = (r) => (!first && !seen.has(`${r.run_id}:${r.status}`) ? "fresh" : "");
    clear(list).appendChild(dataTable([
      { label: "status", get: (r) => badge(r.status) },
      { label: "file", get: (r) => runLink(r), cls: "mono" },
      { label: "workflow", get: (r) => r.workflow || "" },
      { label: "try", num: true, get: (r) => r.attempt },
      { label: "started", get: (r) => fmtTime(r.started_at || r.queued_at) },
      { label: "duration", num: true, get: (r) => fmtSeconds(r.duration_seconds) },
      { label: "rows in", num: true, get: (r) => fmtNum(r.rows_in) },
      { label: "rows out", num: true, get: (r) => fmtNum(r.rows_out) },
      { label: "error / note", cls: "err", get: (r) => h("span", { title: r.error || r.note || "" }, firstLine(r.error || r.note)) },
    ], runs, { empty: "no runs match", rowClass: fresh }));
    for (const r of runs) seen.add(`${r.run_id}:${r.status}`);
    first = false;
    append(clear(pager), [
      state.before ? h("button", { onclick: () => { state.before = ""; draw(); } }, "← newest") : null,
      next ? h("button", { id: "older", onclick: () => { state.before = new URLSearchParams(next.split("?")[1]).get("before"); draw(); } }, "older →") : null,
    ]);
  };
  window.refreshPage = draw;
  every(2000, async () => { if (live.checked && !state.before) await draw(); else if (first) await draw(); });
};

/* --- one run: its steps as a flow and a timeline --------------------------------------------------------- */

PAGES.run = async () => {
  const id = pathPart(2);
  const draw = async () => {
    const r = await api(`/api/runs/${encodeURIComponent(id)}`);
    const failed = r.status === "failed" || r.status === "dead";
    const steps = (r.steps || []).map((s) => ({ ...s }));
    let at = 0;
    for (const s of steps) { s.start = at; at += s.seconds || 0; s.name = s.step; }
    if (failed && steps.length) steps[steps.length - 1].failed = true;
    for (const s of steps) {
      if (s.step === "read" && r.rows_in !== null) s.note = `${fmtNum(r.rows_in)} rows`;
      if (s.step === "write" && r.rows_out !== null) s.note = `${fmtNum(r.rows_out)} rows`;
    }
    const flow = h("div", { class: "flow", id: "flow" },
      h("div", { class: "state edge" }, "landed", h("div", { class: "t" }, fmtTime(r.queued_at))),
      steps.map((s) => [h("span", { class: "arrow" }), h("div", { class: `state ${s.failed ? "failed" : ""}` }, s.step, h("div", { class: "t" }, fmtSeconds(s.seconds)))]),
      h("span", { class: "arrow" }),
      h("div", { class: `state ${failed ? "failed" : r.status === "succeeded" ? "" : "pending"}` },
        failed ? r.status : r.status === "succeeded" ? "committed" : r.status,
        h("div", { class: "t" }, fmtTime(r.finished_at))));
    const attempts = r.file_id ? await api(`/api/runs?file=${encodeURIComponent(r.file_id)}&limit=20`) : [];
    const retry = r.status === "dead" ? h("button", { class: "primary", id: "retry", onclick: async () => {
      try { const res = await api("/api/dead-letters/retry", { method: "POST", body: { run_ids: [r.run_id] } });
        notice(`queued again as ${res.queued[0].run_id}`, "ok"); location.href = `/runs/${encodeURIComponent(res.queued[0].run_id)}`;
      } catch (e) { showError(e); } } }, "retry") : null;
    append(clear(main()), [
      h("div", { class: "head" }, h("div", {}, h("h1", { class: "mono" }, r.file_id), h("div", {}, badge(r.status), " ",
        h("span", { class: "muted" }, `run ${r.run_id} · attempt ${r.attempt}`))), retry),
      panel("Steps", flow, steps.length ? timeline(steps, at) : h("p", { class: "muted" }, "no steps recorded (yet)")),
      panel("Run", facts([
        ["workflow", r.workflow ? h("a", { href: `/runs?workflow=${encodeURIComponent(r.workflow)}` }, r.workflow) : "(unrouted)"],
        ["table", r.table ? tableLink(r.table) : ""],
        ["queued", fmtTime(r.queued_at)], ["started", fmtTime(r.started_at)], ["finished", fmtTime(r.finished_at)],
        ["duration", fmtSeconds(r.duration_seconds)],
        ["rows in", fmtNum(r.rows_in)], ["rows out", fmtNum(r.rows_out)], ["rows quarantined", fmtNum(r.rows_quarantined)],
        ["bytes", fmtBytes(r.bytes)], ["file version", r.file_version], ["content hash", h("span", { class: "mono small" }, r.content_hash || "")],
        r.note ? ["note", r.note] : null,
      ])),
      r.error ? panel("Error", h("pre", { class: "error", id: "error" }, r.error)) : null,
      Object.keys(r.quality || {}).length ? panel("Data quality", dataTable([
        { label: "rule", get: (q) => h("span", { class: "mono" }, q[0]) },
        { label: "action", get: (q) => q[1].action || "" },
        { label: "violations", num: true, get: (q) => fmtNum(q[1].violations) },
      ], Object.entries(r.quality))) : null,
      r.output_files.length ? panel(`Output files (${r.output_files.length})`, h("ul", { class: "mono small" }, r.output_files.map((f) => h("li", {}, f)))) : null,
      panel("Attempts of this file", dataTable([
        { label: "status", get: (a) => badge(a.status) },
        { label: "run", get: (a) => a.run_id === r.run_id ? h("b", {}, a.run_id) : runLink(a, a.run_id), cls: "mono" },
        { label: "try", num: true, get: (a) => a.attempt },
        { label: "finished", get: (a) => fmtTime(a.finished_at) },
        { label: "error", cls: "err", get: (a) => firstLine(a.error) },
      ], attempts)),
    ]);
    return r;
  };
  window.refreshPage = draw;
  const r = await draw();
  if (r && (r.status === "queued" || r.status === "running")) every(2000, async () => { const x = await draw(); if (x.status !== "queued" && x.status !== "running") location.reload(); });
};

/* --- tables ---------------------------------------------------------------------------------------------- */

PAGES.tables = async () => {
  const tables = await api("/api/tables");
  append(clear(main()), [
    h("div", { class: "head" }, h("h1", {}, "Tables")),
    panel(null, dataTable([
      { label: "table", get: (t) => tableLink(t.name), cls: "mono" },
      { label: "format", get: (t) => t.format },
      { label: "rows", num: true, get: (t) => fmtNum(t.rows) },
      { label: "files", num: true, get: (t) => fmtNum(t.files) },
      { label: "size", num: true, get: (t) => fmtBytes(t.bytes) },
      { label: "schema v", num: true, get: (t) => t.schema_version },
      { label: "partitions", get: (t) => t.partition_by.join(", ") },
      { label: "updated", get: (t) => fmtTime(t.updated_at) },
      { label: "workflow", get: (t) => t.workflow || "" },
    ], tables, { empty: "no tables yet: land a file" })),
  ]);
};

function changeText(v) {
  if (v.version === 1) return h("span", { class: "muted" }, `${v.schema.length} columns`);
  const c = v.changes || { added: [], removed: [], retyped: [] };
  const parts = [
    ...c.added.map((a) => h("span", { class: "change-add" }, `+${a.name} ${a.type}`)),
    ...c.removed.map((n) => h("span", { class: "change-del" }, `−${n}`)),
    ...c.retyped.map((m) => h("span", { class: "change-mod" }, `${m.name} ${m.from} → ${m.to}`)),
  ];
  const out = h("span");
  parts.forEach((p, i) => append(out, [i ? ", " : "", p]));
  return parts.length ? out : h("span", { class: "muted" }, "(no change)");
}

PAGES.table = async () => {
  const name = pathPart(2);
  const ref = name.includes(".") ? name.split(".").map((p) => `"${p}"`).join(".") : `"${name}"`;
  // the table's catalog entry is the page; its history and rows are read from its files, which may fail alone
  // (a data file gone, a damaged log): their panels then say why
  const failed = (e) => { if (e.status === 401) throw e; return e; };
  const [t, history, sample] = await Promise.all([
    api(`/api/tables/${encodeURIComponent(name)}`),
    api(`/api/tables/${encodeURIComponent(name)}/history`).catch(failed),
    api(`/api/tables/${encodeURIComponent(name)}/sample?limit=20`, { asWritten: true }).catch(failed),
  ]);
  const unread = (e) => h("pre", { class: "error" }, e.message);
  const maxRows = Math.max(1, ...t.partitions.map((p) => p.rows));
  append(clear(main()), [
    h("div", { class: "head" },
      h("div", {}, h("h1", { class: "mono" }, t.name), h("div", { class: "muted" }, `${t.format} · ${t.location}`)),
      h("a", { class: "button", id: "open-sql", href: `/sql?q=${encodeURIComponent(`SELECT * FROM ${ref} LIMIT 100`)}` }, "query this table")),
    h("div", { class: "cards" }, card("Rows", fmtNum(t.rows)), card("Files", fmtNum(t.files)), card("Size", fmtBytes(t.bytes)),
      card("Schema version", t.schema_version), card("Updated", fmtTime(t.updated_at), ago(t.updated_at))),
    h("div", { class: "grid2" },
      panel("Schema", dataTable([
        { label: "column", get: (c) => h("span", { class: "mono" }, c.name) },
        { label: "type", get: (c) => h("span", { class: "mono" }, c.type + (t.partition_by.includes(c.name) ? "  (partition)" : "")) },
      ], t.schema)),
      panel("Schema versions", dataTable([
        { label: "version", num: true, get: (v) => v.version },
        { label: "created", get: (v) => fmtTime(v.created_at) },
        { label: "run", get: (v) => v.run_id ? h("a", { href: `/runs/${encodeURIComponent(v.run_id)}`, class: "mono small" }, v.run_id) : "" },
        { label: "what changed", get: changeText },
      ], t.schema_versions.slice().reverse()))),
    panel(`Partitions (${t.partitions.length})`, dataTable([
      { label: "partition", get: (p) => h("span", { class: "mono" }, p.partition) },
      { label: "files", num: true, get: (p) => fmtNum(p.files) },
      { label: "rows", num: true, get: (p) => fmtNum(p.rows) },
      { label: "size", num: true, get: (p) => fmtBytes(p.bytes) },
      { label: "", get: (p) => h("div", { class: "bar", title: `${p.rows} rows` }, h("span", { style: null, dataset: { w: p.rows / maxRows } })) },
    ], t.partitions)),
    panel("Sample rows", h("div", { id: "sample" }, sample instanceof Error ? unread(sample) : resultTable(sample))),
    history instanceof Error ? panel("History", unread(history)) : history.length ? panel("History", dataTable([
      { label: "version", num: true, get: (v) => v.version },
      { label: "time", get: (v) => fmtTime(v.timestamp) },
      { label: "operation", get: (v) => v.operation },
      { label: "runs", get: (v) => v.run_ids.slice(0, 3).join(", ") + (v.run_ids.length > 3 ? ` +${v.run_ids.length - 3}` : ""), cls: "mono small" },
      { label: "rows +", num: true, get: (v) => fmtNum(v.rows_added) },
      { label: "rows −", num: true, get: (v) => fmtNum(v.rows_removed) },
      { label: "files +/−", num: true, get: (v) => `${fmtNum(v.files_added)}/${fmtNum(v.files_removed)}` },
    ], history)) : null,
    panel(`Files (${t.data_files.length})`, dataTable([
      { label: "path", get: (f) => h("span", { class: "mono small" }, f.path) },
      { label: "rows", num: true, get: (f) => fmtNum(f.rows) },
      { label: "size", num: true, get: (f) => fmtBytes(f.bytes) },
    ], t.data_files.slice(0, 200)), t.data_files.length > 200 ? h("p", { class: "muted small" }, `and ${t.data_files.length - 200} more`) : null),
  ]);
  for (const bar of document.querySelectorAll(".bar > span")) bar.style.width = `${Math.round(Number(bar.dataset.w) * 100)}%`;
};

function resultTable(res) {
  const cols = res.columns.map((c, i) => ({ label: c, get: (row) => cell(row[i]) }));
  return dataTable(cols, res.rows, { empty: "no rows" });
}

/* --- dead letters ---------------------------------------------------------------------------------------- */

PAGES.dead = () => {
  const list = h("div");
  const act = async (path, body, what) => {
    try {
      const res = await api(path, { method: "POST", body });
      notice(what(res), "ok");
    } catch (e) { showError(e); }
    await draw();
  };
  append(clear(main()), [
    h("div", { class: "head" }, h("div", {}, h("h1", {}, "Dead letters"),
      h("div", { class: "muted small" }, "runs that used up their attempts; retry once the workflow or the file is fixed")),
      h("div", { class: "row-actions" },
        h("button", { class: "primary", id: "retry-all", onclick: () => act("/api/dead-letters/retry", { all: true }, (r) => `queued ${r.queued.length} runs again`) }, "retry all"),
        h("button", { class: "danger", id: "purge-all", onclick: () => { if (confirm("Take every dead run off the list? Their records and files stay.")) act("/api/dead-letters/purge", { all: true }, (r) => `purged ${r.purged} runs`); } }, "purge all"))),
    panel(null, list),
  ]);
  const draw = async () => {
    const dead = await api("/api/dead-letters");
    clear(list).appendChild(dataTable([
      { label: "file", get: (r) => runLink(r), cls: "mono" },
      { label: "workflow", get: (r) => r.workflow || "" },
      { label: "try", num: true, get: (r) => r.attempt },
      { label: "died", get: (r) => fmtTime(r.finished_at) },
      { label: "error", cls: "err", get: (r) => h("pre", { class: "error" }, r.error || "") },
      { label: "", get: (r) => h("div", { class: "row-actions" },
        h("button", { class: "primary", dataset: { retry: r.file_id }, onclick: () => act("/api/dead-letters/retry", { run_ids: [r.run_id] }, (x) => `queued ${r.file_id} again as ${x.queued[0].run_id}`) }, "retry"),
        h("button", { onclick: () => act("/api/dead-letters/purge", { run_ids: [r.run_id] }, () => `purged ${r.file_id}`) }, "purge")) },
    ], dead, { empty: "the dead-letter list is empty" }));
  };
  window.refreshPage = draw;
  every(5000, draw);
};

/* --- quarantine ------------------------------------------------------------------------------------------ */

PAGES.quarantine = async () => {
  const tables = await api("/api/quarantine");
  const chosen = query("table") || (tables[0] && tables[0].table) || "";
  const run = h("input", { type: "search", placeholder: "only the rows of run…", value: query("run") || "", id: "q-run" });
  const rows = h("div", { id: "q-rows" });
  const draw = async () => {
    if (!chosen) return;
    setQuery({ table: chosen, run: run.value.trim() });
    const params = new URLSearchParams({ limit: 500 });
    if (run.value.trim()) params.set("run", run.value.trim());
    const res = await api(`/api/quarantine/${encodeURIComponent(chosen)}?${params}`, { asWritten: true });
    const first = ["_source_file", "_line", "_rule", "_column", "_reason", "_raw"].filter((c) => res.columns.includes(c));
    const order = [...first, ...res.columns.filter((c) => !first.includes(c))];
    const idx = Object.fromEntries(res.columns.map((c, i) => [c, i]));
    clear(rows).appendChild(dataTable(order.map((c) => ({ label: c, cls: c === "_reason" ? "err" : c === "_raw" ? "mono small" : "",
      get: (row) => cell(row[idx[c]]) })), res.rows, { empty: "no quarantined rows" }));
    if (res.truncated) rows.appendChild(h("p", { class: "muted small" }, "showing the first 500 rows; query quarantine tables on the SQL page for more"));
  };
  const replay = async () => {
    if (!confirm(`Load the rows of quarantine.${chosen} that pass the workflow's rules now?`)) return;
    try {
      const body = run.value.trim() ? { run_id: run.value.trim() } : {};
      const res = await api(`/api/quarantine/${encodeURIComponent(chosen)}/replay`, { method: "POST", body });
      notice(`${chosen}: ${res.replayed} rows loaded from quarantine; ${res.still_quarantined} still quarantined`, "ok");
    } catch (e) { showError(e); }
    await draw();
  };
  run.addEventListener("keydown", (e) => { if (e.key === "Enter") draw(); });
  append(clear(main()), [
    h("div", { class: "head" }, h("div", {}, h("h1", {}, "Quarantine"),
      h("div", { class: "muted small" }, "rows set aside by data-quality rules or unparseable lines, with file, line and reason"))),
    panel("Tables", dataTable([
      { label: "table", get: (t) => t.table === chosen ? h("b", {}, t.table) : h("a", { href: `/quarantine?table=${encodeURIComponent(t.table)}` }, t.table) },
      { label: "quarantined rows", num: true, get: (t) => fmtNum(t.rows) },
      { label: "files", num: true, get: (t) => fmtNum(t.files) },
      { label: "updated", get: (t) => fmtTime(t.updated_at) },
    ], tables, { empty: "nothing quarantined" })),
    chosen ? panel(`quarantine.${chosen}`, h("div", { class: "filters" }, run, h("button", { onclick: draw }, "show"),
      h("button", { class: "primary", id: "replay", onclick: replay }, "replay rows that pass now")), rows) : null,
  ]);
  window.refreshPage = draw;
  await draw();
};

/* --- SQL ------------------------------------------------------------------------------------------------- */

PAGES.sql = async () => {
  const editor = h("textarea", { id: "sql", spellcheck: false },
    query("q") || "SELECT status, count(*) AS runs, sum(rows_out) AS rows\nFROM landfall.runs\nGROUP BY status\nORDER BY runs DESC");
  const out = h("div", { id: "result" });
  const info = h("span", { class: "muted small", id: "result-info" });
  const runIt = async () => {
    notice("");
    clear(out);
    info.textContent = "running…";
    setQuery({ q: editor.value });
    try {
      const res = await api("/api/query", { method: "POST", body: { sql: editor.value }, asWritten: true });
      info.textContent = `${fmtNum(res.rows.length)} row${res.rows.length === 1 ? "" : "s"} in ${fmtSeconds(res.seconds)}` +
        (res.truncated ? " (more rows than the limit: the first ones shown)" : "");
      out.appendChild(resultTable(res));
    } catch (e) {
      info.textContent = "";
      out.appendChild(h("pre", { class: "error" }, e.message));
    }
  };
  editor.addEventListener("keydown", (e) => { if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); runIt(); } });
  const tables = await api("/api/tables");
  const insert = (name) => { editor.setRangeText(name, editor.selectionStart, editor.selectionEnd, "end"); editor.focus(); };
  const quoted = (n) => n.includes(".") ? n.split(".").map((p) => `"${p}"`).join(".") : n;
  append(clear(main()), [
    h("div", { class: "head" }, h("div", {}, h("h1", {}, "SQL"),
      h("div", { class: "muted small" }, "one read-only DuckDB statement over every table and landfall's own records"))),
    h("div", { class: "sql-layout" },
      h("div", {}, panel(null, editor, h("div", { class: "filters" }, h("button", { class: "primary", id: "run-sql", onclick: runIt }, "run"),
        h("span", { class: "muted small" }, "Ctrl+Enter"), info)), panel(null, out)),
      panel("Tables", h("ul", {}, tables.map((t) => h("li", {}, h("button", { onclick: () => insert(quoted(t.name)) }, t.name)))),
        h("h2", {}, "landfall's records"),
        h("ul", {}, ["landfall.runs", "landfall.files", "landfall.tables", "landfall.schema_versions"].map((n) =>
          h("li", {}, h("button", { onclick: () => insert(n) }, n)))))),
  ]);
  if (query("q")) await runIt();
};

/* --- start ----------------------------------------------------------------------------------------------- */

document.addEventListener("DOMContentLoaded", async () => {
  const page = PAGES[document.body.dataset.page];
  try { if (page) await page(); } catch (e) {
    showError(e);
    const m = main();
    if (m.textContent.trim() === "Loading…") clear(m).appendChild(h("p", { class: "muted" }, e.message || String(e)));
  }
});
