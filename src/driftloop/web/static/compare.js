// The compare view: 2-4 chains at the same step, one slider, their curves on one plot.
"use strict";
(function () {
  const box = document.getElementById("compare");
  if (!box) return;
  const panels = Array.from(box.querySelectorAll(".panel"));
  const slider = document.getElementById("slider");
  const label = document.getElementById("step-label");
  const metric = document.getElementById("metric");
  const playBtn = document.getElementById("play");
  const state = { step: 0, chains: [], plot: null, timer: null };
  window.driftloopCompare = state;
  function url(run, sha) { return "/frames/" + encodeURIComponent(run) + "/" + sha + ".png"; }
  function show(step) {
    state.step = step; slider.value = step; label.textContent = step;
    state.chains.forEach((c, i) => {
      const frames = c.data.frames;
      let f = null;
      for (const x of frames) { if (x.step <= step) f = x; }
      const img = panels[i].querySelector("img.frame");
      if (f) { img.src = url(c.run, f.sha256); img.dataset.step = f.step; img.dataset.sha = f.sha256; }
      const m = c.data.metrics, j = m.step ? m.step.indexOf(f ? f.step : -1) : -1;
      const v = j >= 0 && m[metric.value] ? m[metric.value][j] : null;
      panels[i].querySelector(".numbers").textContent = "step " + (f ? f.step : "–") + " · " + DriftCharts.label(metric.value) + " " + (v == null ? "–" : v.toFixed(3));
    });
    if (state.plot) state.plot.redraw(false, false);
    const u = new URL(location.href); u.searchParams.set("step", step); history.replaceState(null, "", u);
  }
  function plot() {
    const div = document.getElementById("plots");
    div.innerHTML = "";
    const name = metric.value;
    const series = state.chains.filter(c => c.data.metrics[name]).map(c => ({ label: c.label, steps: c.data.metrics.step, values: c.data.metrics[name] }));
    state.plot = series.length ? DriftCharts.make(div, DriftCharts.label(name), series, state, 720) : null;
  }
  Promise.all(panels.map(p => fetch(p.dataset.src, { credentials: "same-origin" }).then(r => r.json()).then(d => ({ run: p.dataset.run, label: p.dataset.label, data: d })))).then(list => {
    state.chains = list;
    const last = Math.max(0, ...list.map(c => c.data.frames.length ? c.data.frames[c.data.frames.length - 1].step : 0));
    slider.max = last;
    for (const c of list) for (const f of c.data.frames) { const im = new Image(); im.src = url(c.run, f.sha256); }
    const asked = box.dataset.step === "" ? last : Math.max(0, Math.min(last, Number(box.dataset.step)));
    plot(); show(asked);
  });
  slider.addEventListener("input", () => show(Number(slider.value)));
  metric.addEventListener("change", () => { plot(); show(state.step); });
  playBtn.addEventListener("click", () => {
    if (state.timer) { clearInterval(state.timer); state.timer = null; playBtn.textContent = "▶"; return; }
    playBtn.textContent = "❚❚";
    if (state.step >= Number(slider.max)) show(0);
    state.timer = setInterval(() => { if (state.step >= Number(slider.max)) { playBtn.click(); return; } show(state.step + 1); }, 100);
  });
  document.addEventListener("keydown", e => {
    if (e.key === "ArrowRight") show(Math.min(Number(slider.max), state.step + 1));
    else if (e.key === "ArrowLeft") show(Math.max(0, state.step - 1));
  });
})();
