"use strict";
/* Small inline-SVG charts for the landfall dashboard (no library): stacked bars and lines over a time axis,
   and the run timeline. Every text goes in through textContent, never as markup. */

const SVG_NS = "http://www.w3.org/2000/svg";

function svgEl(tag, attrs, text) {
  const el = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}

/* Axis ticks from 0 to at least `max`: a nice step (1, 2, 2.5 or 5 times a power of ten; whole numbers for
   counts), about four of them. */
function ticks(max, integer) {
  if (!(max > 0)) max = integer ? 4 : 1;
  const raw = max / 4;
  const p = Math.pow(10, Math.floor(Math.log10(raw)));
  let step = [1, 2, 2.5, 5, 10].map((m) => m * p).find((s) => s >= raw);
  if (integer) step = Math.max(1, Math.ceil(step));
  const top = Math.ceil(max / step - 1e-9) * step;
  const out = [];
  for (let v = 0; v <= top + step / 2; v += step) out.push(v);
  return out;
}

/* chart({labels, series: [{name, values, color, kind: "bar"|"line"}], yFormat, height, integer})
   Bars of several series stack; lines are drawn over them. Labels are the x axis (shown sparsely). */
function chart(opts) {
  const W = 640, H = opts.height || 200, L = 48, R = 12, T = 10, B = 26;
  const labels = opts.labels || [];
  const n = Math.max(labels.length, 1);
  const fmt = opts.yFormat || ((v) => String(Math.round(v * 100) / 100));
  const bars = opts.series.filter((s) => s.kind !== "line");
  const lines = opts.series.filter((s) => s.kind === "line");
  let max = 0;
  for (let i = 0; i < n; i++) {
    const stacked = bars.reduce((a, s) => a + (s.values[i] || 0), 0);
    max = Math.max(max, stacked, ...lines.map((s) => s.values[i] || 0));
  }
  const marks = ticks(max, opts.integer);
  max = marks[marks.length - 1];
  const root = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart", width: "100%", role: "img" });
  if (opts.title) root.appendChild(svgEl("title", {}, opts.title));
  const y = (v) => T + (H - T - B) * (1 - v / max);
  const step = (W - L - R) / n;
  for (const v of marks) {
    root.appendChild(svgEl("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: v ? "grid" : "axis" }));
    root.appendChild(svgEl("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end" }, fmt(v)));
  }
  const every = Math.max(1, Math.ceil(n / 8));
  labels.forEach((lab, i) => {
    if (i % every) return;
    root.appendChild(svgEl("text", { x: L + step * (i + 0.5), y: H - 8, "text-anchor": "middle" }, lab));
  });
  for (let i = 0; i < n; i++) {
    let base = 0;
    for (const s of bars) {
      const v = s.values[i] || 0;
      if (!v) continue;
      const rect = svgEl("rect", {
        x: L + step * i + step * 0.12, width: Math.max(1, step * 0.76),
        y: y(base + v), height: Math.max(0.5, y(base) - y(base + v)), fill: s.color, rx: 1.5,
      });
      rect.appendChild(svgEl("title", {}, `${labels[i] || ""} ${s.name}: ${fmt(v)}`));
      root.appendChild(rect);
      base += v;
    }
  }
  for (const s of lines) {
    const pts = [];
    s.values.forEach((v, i) => { if (v !== null && v !== undefined) pts.push([L + step * (i + 0.5), y(v), v, i]); });
    if (pts.length > 1) {
      root.appendChild(svgEl("polyline", {
        points: pts.map((p) => `${p[0]},${p[1]}`).join(" "), fill: "none", stroke: s.color, "stroke-width": 2,
        "stroke-linejoin": "round",
      }));
    }
    for (const p of pts) {
      const c = svgEl("circle", { cx: p[0], cy: p[1], r: 2.5, fill: s.color });
      c.appendChild(svgEl("title", {}, `${labels[p[3]] || ""} ${s.name}: ${fmt(p[2])}`));
      root.appendChild(c);
    }
  }
  return root;
}

/* timeline([{name, start, seconds, note, failed}], total): one bar per step on a shared time axis. */
function timeline(steps, total) {
  const W = 1100, row = 26, L = 120, R = 150, T = 8, axis = 22;
  const H = T + steps.length * row + axis;
  const span = Math.max(total, 1e-6);
  const x = (s) => L + (W - L - R) * (s / span);
  const root = svgEl("svg", { viewBox: `0 0 ${W} ${H}`, class: "timeline", width: "100%", role: "img" });
  for (let g = 0; g <= 4; g++) {
    const t = (span * g) / 4;
    root.appendChild(svgEl("line", { x1: x(t), x2: x(t), y1: T, y2: H - axis + 4, stroke: "#eef0f3" }));
    root.appendChild(svgEl("text", { x: x(t), y: H - 6, "text-anchor": "middle", class: "t" }, fmtSeconds(t)));
  }
  steps.forEach((s, i) => {
    const top = T + i * row;
    root.appendChild(svgEl("text", { x: L - 8, y: top + 17, "text-anchor": "end" }, s.name));
    const bar = svgEl("rect", {
      x: x(s.start), y: top + 5, width: Math.max(2, x(s.start + s.seconds) - x(s.start)), height: row - 10,
      rx: 3, fill: s.failed ? "#dc2626" : "#2563eb",
    });
    bar.appendChild(svgEl("title", {}, `${s.name}: ${fmtSeconds(s.seconds)}${s.note ? " · " + s.note : ""}`));
    root.appendChild(bar);
    const label = fmtSeconds(s.seconds) + (s.note ? ` · ${s.note}` : "");
    root.appendChild(svgEl("text", { x: x(s.start + s.seconds) + 6, y: top + 17, class: "t" }, label));
  });
  return root;
}

function fmtSeconds(s) {
  if (s === null || s === undefined) return "";
  if (s < 1) return `${Math.round(s * 1000 * 10) / 10} ms`;
  if (s < 120) return `${Math.round(s * 100) / 100} s`;
  return `${Math.round(s / 6) / 10} min`;
}
