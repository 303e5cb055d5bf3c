// Bundles: every chain's curve of a measure (thin, coloured by group), each group's mean (thick) and its
// 95% band, and the marked chains (mark=RUN:CHAIN: a table's page) dark on top; hover names the nearest
// chain, a click opens it at that step. The gallery's /bundles (served
// from /assets/bundles.js, its data fetched: data-src) and a published site's bundles.html (its data one
// <script> per measure: data-files, as file:// forbids fetch) draw with this one module (driftloop.report.bundles).
"use strict";
(function () {
  const box = document.getElementById("bundle");
  if (!box) return;
  const link = box.dataset.link || "/runs/{run}/chains/{chain}?step={step}";
  const tip = document.getElementById("bundle-tip"), legend = document.getElementById("bundle-legend");
  const MARK = "#111";  // the marked chains: dark and thicker than the bundle's curves, over the means
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
  const state = { drawn: false, ms: null, plot: null, data: null, hover: null, chains: [], marked: [] };
  window.driftloopBundle = state;
  const started = performance.now();
  function rgba(hex, a) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + (n >> 16) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + a + ")";
  }
  function bands(u) {  // under the curves: each group's band, broken where it has none
    const ctx = u.ctx, steps = state.data.steps;
    ctx.save();
    state.data.groups.forEach((g, gi) => {
      ctx.fillStyle = rgba(COLOURS[gi % 10], 0.2);
      let run = [];
      const flush = () => {
        if (run.length > 1) {
          ctx.beginPath();
          run.forEach((j, k) => { const x = u.valToPos(steps[j], "x", true), y = u.valToPos(g.high[j], "y", true); k ? ctx.lineTo(x, y) : ctx.moveTo(x, y); });
          for (let k = run.length - 1; k >= 0; k--) ctx.lineTo(u.valToPos(steps[run[k]], "x", true), u.valToPos(g.low[run[k]], "y", true));
          ctx.closePath(); ctx.fill();
        }
        run = [];
      };
      steps.forEach((_, j) => { if (g.low[j] == null || g.high[j] == null) flush(); else run.push(j); });
      flush();
    });
    ctx.restore();
  }
  function hover(u) {  // the chain whose curve passes nearest the pointer at the step under it
    const j = u.cursor.idx, top = u.cursor.top;
    if (j == null || top == null || top < 0) { state.hover = null; return; }
    let best = null, gap = 12;
    for (let i = 0; i < state.chains.length; i++) {
      const v = u.data[i + 1][j];
      if (v == null) continue;
      const d = Math.abs(u.valToPos(v, "y") - top);
      if (d < gap) { gap = d; best = i; }
    }
    if (best == null) { state.hover = null; tip.textContent = "step " + state.data.steps[j]; return; }
    const c = state.chains[best], v = u.data[best + 1][j];
    state.hover = { chain: c.chain, step: state.data.steps[j] };
    tip.textContent = c.chain + " · " + c.group + " · step " + state.data.steps[j] + " · " + DriftCharts.label(state.data.measure) + " " + v.toPrecision(4);
  }
  function draw(d) {
    state.data = d;
    if (!d.steps.length) { tip.textContent = "no values of this measure for these chains"; state.drawn = true; return; }
    const series = [{ label: "step" }], data = [d.steps];
    const alpha = Math.max(0.05, Math.min(0.6, 6 / Math.max(1, d.n_chains / Math.max(1, d.groups.length))));
    d.groups.forEach((g, gi) => g.values.forEach((v, k) => {
      series.push({ stroke: rgba(COLOURS[gi % 10], alpha), width: 1, spanGaps: true, points: { show: false } });
      data.push(v);
      state.chains.push({ chain: g.chains[k], group: g.name });
    }));
    d.groups.forEach((g, gi) => {
      series.push({ stroke: COLOURS[gi % 10], width: 3, spanGaps: true, points: { show: false } });
      data.push(g.mean);
    });
    const curve = {};  // chain -> its values, for the marked chains (a table's page), drawn last: on top
    d.groups.forEach(g => g.chains.forEach((c, k) => { curve[c] = g.values[k]; }));
    const marked = (d.marked || []).filter(c => c in curve);
    marked.forEach(c => {
      series.push({ stroke: MARK, width: 2, spanGaps: true, points: { show: false } });
      data.push(curve[c]);
    });
    state.marked = marked;
    box.dataset.marked = marked.length;
    const opts = {
      title: DriftCharts.label(d.measure) + " · " + d.n_chains + " chain(s)", width: Math.max(320, box.clientWidth - 14), height: 440,
      legend: { show: false }, cursor: { points: { show: false }, drag: { x: false, y: false } },
      scales: { x: { time: false } }, series: series,
      axes: [{ label: "step (number of copies)" }, { label: DriftCharts.label(d.measure), size: 60 }],
      hooks: { drawAxes: [bands], setCursor: [hover] },
    };
    state.plot = new uPlot(opts, data, box);
    state.plot.over.addEventListener("click", () => {
      if (!state.hover) return;
      const at = state.hover.chain.lastIndexOf(":");
      location.href = link.replace("{run}", encodeURIComponent(state.hover.chain.slice(0, at)))
        .replace("{chain}", state.hover.chain.slice(at + 1)).replace("{step}", state.hover.step);
    });
    legend.innerHTML = "";
    d.groups.forEach((g, gi) => {
      const li = document.createElement("li");
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = COLOURS[gi % 10];
      li.appendChild(sw);
      const banded = g.low.some(v => v != null);
      li.appendChild(document.createTextNode(g.name + ": " + g.chains.length + " chain(s), " + g.n_images + " image(s)" + (banded ? "" : " · no band (fewer than 3 images)")));
      legend.appendChild(li);
    });
    if (marked.length) {
      const li = document.createElement("li");
      li.id = "bundle-marked";
      const sw = document.createElement("span"); sw.className = "swatch"; sw.style.background = MARK;
      li.appendChild(sw);
      li.appendChild(document.createTextNode("marked: the " + marked.length + (marked.length === 1 ? " chain" : " chains") + " of the table's page (each group's mean and band are over all its chains)"));
      legend.appendChild(li);
    }
    state.ms = performance.now() - started;
    state.drawn = true;
  }
  const form = document.getElementById("bundle-form");  // a new measure or grouping: a new address
  if (form) form.querySelectorAll("select").forEach(el => el.addEventListener("change", () => form.submit()));
  function regroup(f, measure, by) {  // a site's data file (every curve once) as one grouping's bundle
    return { measure: measure, steps: f.steps, n_chains: f.n_chains, groups: f.by[by].map(g => ({
      name: g.name, chains: g.members.map(i => f.chains[i]), values: g.members.map(i => f.values[i]),
      mean: g.mean, low: g.low, high: g.high, n_images: g.n_images })) };
  }
  if (box.dataset.files) {  // a published site: the address's choice among the options its form offers
    const params = new URLSearchParams(location.search);
    const pick = name => {
      const el = form.elements[name], want = params.get(name);
      if (want !== null && Array.from(el.options).some(o => o.value === want)) el.value = want;
      return el.value;
    };
    const measure = pick("measure"), by = pick("by");
    const tag = document.createElement("script");
    tag.src = box.dataset.files + encodeURIComponent(measure) + ".js";
    tag.onload = () => draw(regroup(window.driftloopBundleData[measure], measure, by));
    document.head.appendChild(tag);
  } else {
    fetch(box.dataset.src + location.search, { credentials: "same-origin" }).then(r => r.json()).then(draw);
  }
})();
