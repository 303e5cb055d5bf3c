// driftloop's metric charts, drawn in the browser with uPlot: the one chart module of the gallery (served
// from /assets/charts.js) and of report.html (inlined, with the chart data as JSON in the page).
"use strict";
window.DriftCharts = (function () {
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"];
  const MANY = 10;  // above this many chains: one colour, one legend entry
  const FEW_POINTS = 25;  // at most this many steps: point markers too
  let labels = null;  // metric name -> title, from the page (driftloop.measures, the one vocabulary)
  function label(name) {
    if (labels === null) {
      const el = document.getElementById("measure-labels");
      labels = el ? JSON.parse(el.textContent) : {};
    }
    return labels[name] || name;
  }
  const FONT = 'system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, "Noto Sans", sans-serif';
  const AXIS_ROOM = 100;  // px of a chart's height that are not plot: the x axis, its label, the padding
  // The y axis label drawn along `room` px: uPlot's bold 12px when it fits, else smaller (down to 9px), else
  // cut with an ellipsis; the whole text is always in the caption too (a long axis label was clipped).
  function fitLabel(text, room) {
    const ctx = document.createElement("canvas").getContext("2d");
    const font = px => "bold " + px + "px " + FONT;
    for (let px = 12; px >= 9; px--) {
      ctx.font = font(px);
      if (ctx.measureText(text).width <= room) return { text: text, font: font(px) };
    }
    let cut = text;
    while (cut.length > 1 && ctx.measureText(cut + "…").width > room) cut = cut.slice(0, -1);
    return { text: cut + "…", font: font(9) };
  }
  function width(container, fallback) {
    const w = container.clientWidth ? container.clientWidth - 14 : fallback;
    return Math.max(280, Math.min(w, fallback || w));
  }
  // A vertical line at state.step (the gallery's slider), redrawn with the plot.
  function cursorPlugin(state) {
    return { hooks: { draw: [function (u) {
      if (!state || state.step == null) return;
      const x = Math.round(u.valToPos(state.step, "x", true));
      const ctx = u.ctx;
      ctx.save(); ctx.strokeStyle = "#e8590c"; ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.restore();
    }] } };
  }
  function box(container, cls) {
    const div = document.createElement("div");
    div.className = cls || "plot";
    container.appendChild(div);
    return div;
  }
  // series: [{label, steps: [...], values: [...]}] -> one plot with a shared x of all steps (the gallery)
  function make(container, title, series, state, w) {
    const steps = Array.from(new Set(series.flatMap(s => s.steps))).sort((a, b) => a - b);
    const cols = series.map(s => {
      const at = new Map(s.steps.map((st, i) => [st, s.values[i]]));
      return steps.map(st => (at.has(st) ? at.get(st) : null));
    });
    const opts = {
      title: title, width: w || 360, height: 200, plugins: [cursorPlugin(state)],
      scales: { x: { time: false } }, legend: { show: series.length > 1 },
      series: [{ label: "step" }].concat(series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % 10], width: 1.5, spanGaps: true }))),
      axes: [{ label: "step", incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000] }, {}],
    };
    return new uPlot(opts, [steps].concat(cols), box(container));
  }
  // spec (from driftloop.report.charts): {title, axis, steps, chains: [{label, values}], mean, lo, hi,
  // guide: [value, label] | null, log_x, note} -> every chain, their mean and 95% band, the guide line.
  function metric(container, spec, state, w) {
    const n = spec.chains.length, single = n === 1, many = n > MANY, all = spec.n_chains || n;
    const points = { show: spec.steps.length <= FEW_POINTS, size: single ? 5 : 4 };
    const series = [{ label: "step" }], data = [spec.steps];
    const alpha = single ? 1 : Math.max(0.2, Math.min(0.8, 3 / n));
    spec.chains.forEach((c, i) => {
      const colour = many ? "rgba(89,115,153," + alpha + ")" : COLOURS[i % 10];
      series.push({ label: many ? (i === 0 ? "chains (" + (all > n ? n + " of " + all : "n=" + n) + ")" : "") : c.label, stroke: colour,
        width: single ? 1.8 : 1, spanGaps: true, points: points, show: true });
      data.push(c.values);
    });
    const bands = [], hidden = [];  // legend rows not worth a line (the band's upper edge)
    if (spec.lo && spec.hi) {
      hidden.push(series.length);
      series.push({ label: "95% CI high", stroke: "rgba(0,0,0,0)", points: { show: false } }); data.push(spec.hi);
      series.push({ label: "95% CI of the mean", stroke: "rgba(0,0,0,0.25)", width: 0, points: { show: false } }); data.push(spec.lo);
      bands.push({ series: [series.length - 2, series.length - 1], fill: "rgba(0,0,0,0.13)" });
    }
    if (spec.mean) {
      series.push({ label: "mean of " + all + " chains", stroke: "#000", width: 2.2, spanGaps: true, points: points });
      data.push(spec.mean);
    }
    if (spec.guide) {
      series.push({ label: spec.guide[1], stroke: "#d62728", dash: [6, 4], width: 1, points: { show: false } });
      data.push(spec.steps.map(() => spec.guide[0]));
    }
    const height = 280, yLabel = fitLabel(spec.axis, height - AXIS_ROOM);
    const opts = {
      title: spec.title, width: width(container, w || 520), height: height, bands: bands,
      plugins: state ? [cursorPlugin(state)] : [],
      // y: a series that does not change gets the range the data says (uPlot would draw 0 on 0..100)
      scales: { x: spec.log_x ? { time: false, distr: 3, range: (u, lo, hi) => [lo, hi] } : { time: false },
        y: spec.y_range ? { range: spec.y_range } : {} },
      legend: { show: n <= MANY || !!spec.mean, live: !!state },
      series: series,
      axes: [{ label: spec.log_x ? "step (log scale)" : "step (number of copies)" },
        { label: yLabel.text, labelFont: yLabel.font, size: 60 }],
    };
    const div = box(container, "plot chart");
    div.dataset.yLabel = yLabel.text; div.dataset.yLabelFont = yLabel.font; div.dataset.yRoom = height - AXIS_ROOM;
    const plot = new uPlot(opts, data, div);
    const rows = div.querySelectorAll(".u-legend .u-series");
    const off = series.length - rows.length;  // the step's row is there only with a live legend
    const hide = i => { if (rows[i - off]) rows[i - off].style.display = "none"; };
    hidden.forEach(hide);
    if (many) for (let i = 2; i <= n; i++) hide(i);
    if (spec.note) { const p = document.createElement("p"); p.className = "hint"; p.textContent = spec.note; div.appendChild(p); }
    return plot;
  }
  // spec: {title, chains: [{label, a: [...], b: [...], steps: [...]}], max_step} -> each chain's mean colour
  // as a path in the a*-b* plane, coloured by step (viridis-like ramp); circle = start, square = last step.
  function trajectory(container, spec, w) {
    const as = spec.chains.flatMap(c => c.a), bs = spec.chains.flatMap(c => c.b);
    const cx = (Math.min(...as) + Math.max(...as)) / 2, cy = (Math.min(...bs) + Math.max(...bs)) / 2;
    const half = Math.max(Math.max(...as) - Math.min(...as), Math.max(...bs) - Math.min(...bs), 1) / 2 * 1.15;
    const ramp = t => "hsl(" + Math.round(270 - 210 * t) + ",70%," + Math.round(32 + 22 * t) + "%)";
    const size = Math.min(width(container, w || 460), 460);
    function draw(u) {
      const ctx = u.ctx, dpr = devicePixelRatio, max = Math.max(spec.max_step, 1);
      const X = v => u.valToPos(v, "x", true), Y = v => u.valToPos(v, "y", true);
      ctx.save();
      for (const c of spec.chains) {
        ctx.lineWidth = (spec.chains.length > MANY ? 1.1 : 2) * dpr;
        for (let i = 1; i < c.a.length; i++) {
          ctx.strokeStyle = ramp((c.steps[i - 1] + c.steps[i]) / 2 / max);
          ctx.beginPath(); ctx.moveTo(X(c.a[i - 1]), Y(c.b[i - 1])); ctx.lineTo(X(c.a[i]), Y(c.b[i])); ctx.stroke();
        }
        const r = 4 * dpr, last = c.a.length - 1;
        ctx.lineWidth = dpr; ctx.strokeStyle = "#000";
        ctx.fillStyle = "#fff"; ctx.beginPath(); ctx.arc(X(c.a[0]), Y(c.b[0]), r, 0, 2 * Math.PI); ctx.fill(); ctx.stroke();
        if (last > 0) {
          ctx.fillStyle = ramp(c.steps[last] / max);
          ctx.fillRect(X(c.a[last]) - r, Y(c.b[last]) - r, 2 * r, 2 * r); ctx.strokeRect(X(c.a[last]) - r, Y(c.b[last]) - r, 2 * r, 2 * r);
        }
      }
      ctx.restore();
    }
    const opts = {
      title: spec.title, width: size, height: size, legend: { show: false }, cursor: { show: false },
      scales: { x: { time: false, range: [cx - half, cx + half] }, y: { range: [cy - half, cy + half] } },
      series: [{}, { show: false }],
      axes: [{ label: "mean a* (← greener · redder →)" }, { label: "mean b* (← bluer · yellower →)", size: 60 }],
      hooks: { draw: [draw] },
    };
    return new uPlot(opts, [[cx - half, cx + half], [null, null]], box(container, "plot chart trajectory"));
  }
  // Every chart of a report: data = {charts: [spec with kind "metric" | "trajectory"]}.
  function renderAll(container, data) {
    const made = [];
    for (const spec of data.charts) {
      const figure = document.createElement("figure");
      figure.className = "chart-figure" + (spec.kind === "trajectory" ? " square" : "");
      container.appendChild(figure);
      made.push(spec.kind === "trajectory" ? trajectory(figure, spec) : metric(figure, spec));
      if (spec.caption) {
        const cap = document.createElement("figcaption"); cap.textContent = spec.caption; figure.appendChild(cap);
      }
    }
    return made;
  }
  return { make: make, label: label, metric: metric, trajectory: trajectory, renderAll: renderAll };
})();
