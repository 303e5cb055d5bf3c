// Metric plots drawn in the browser with uPlot, with a vertical cursor at the current step.
"use strict";
window.DriftPlots = (function () {
  const COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"];
  const LABELS = {
    ssim_to_origin: "SSIM to the original", lab_delta_e: "ΔE (mean colour vs original)",
    lab_b_delta: "Δb* (yellow +)", psnr_to_origin: "PSNR to the original, dB",
    mae_to_prev: "mean change from the previous step", white_cast: "white cast",
  };
  function label(name) { return LABELS[name] || name; }
  function cursorPlugin(state) {
    return { hooks: { draw: [function (u) {
      if (state.step == null) return;
      const x = Math.round(u.valToPos(state.step, "x", true));
      const ctx = u.ctx;
      ctx.save(); ctx.strokeStyle = "#e8590c"; ctx.lineWidth = 2 * devicePixelRatio;
      ctx.beginPath(); ctx.moveTo(x, u.bbox.top); ctx.lineTo(x, u.bbox.top + u.bbox.height); ctx.stroke();
      ctx.restore();
    }] } };
  }
  // series: [{label, steps: [...], values: [...]}] -> one plot with a shared x of all steps
  function make(container, title, series, state, width) {
    const steps = Array.from(new Set(series.flatMap(s => s.steps))).sort((a, b) => a - b);
    const cols = series.map(s => {
      const at = new Map(s.steps.map((st, i) => [st, s.values[i]]));
      return steps.map(st => (at.has(st) ? at.get(st) : null));
    });
    const opts = {
      title: title, width: width || 360, height: 200, plugins: [cursorPlugin(state)],
      scales: { x: { time: false } }, legend: { show: series.length > 1 },
      series: [{ label: "step" }].concat(series.map((s, i) => ({ label: s.label, stroke: COLOURS[i % 4], width: 1.5, spanGaps: true }))),
      axes: [{ label: "step", incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 500, 1000, 2000, 5000] }, {}],
    };
    const div = document.createElement("div");
    div.className = "plot";
    container.appendChild(div);
    return new uPlot(opts, [steps].concat(cols), div);
  }
  return { make: make, label: label };
})();
