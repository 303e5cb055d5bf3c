// The chain view: frame at step k beside the original, slider, arrow keys, play/pause, metrics, plots.
"use strict";
(function () {
  const viewer = document.getElementById("viewer");
  if (!viewer) return;
  const run = viewer.dataset.run;
  const slider = document.getElementById("slider");
  const frame = document.getElementById("frame");
  const original = document.getElementById("original");
  const stepLabel = document.getElementById("step-label");
  const stepMax = document.getElementById("step-max");
  const numbers = document.getElementById("numbers");
  const playBtn = document.getElementById("play");
  const speed = document.getElementById("speed");
  const cacheInfo = document.getElementById("cache");
  const state = { step: 0, data: null, images: new Map(), loaded: 0, plots: [], timer: null, touched: false, ready: false };
  window.driftloopChain = state;
  const wanted = ["ssim_to_origin", "psnr_to_origin", "lab_delta_e", "lab_b_delta", "lab_a_delta", "white_cast", "mae_to_prev", "sharpness", "model_seconds"];

  function url(sha) { return "/frames/" + encodeURIComponent(run) + "/" + sha + ".png"; }
  function preload(frames) {
    for (const f of frames) {
      if (state.images.has(f.step)) continue;
      const img = new Image();
      img.onload = () => { state.loaded += 1; cacheInfo.textContent = state.loaded + "/" + state.data.frames.length + " frames cached"; };
      img.src = url(f.sha256);
      state.images.set(f.step, img);
    }
  }
  function frameAt(step) { return state.data.frames.find(f => f.step === step); }
  function show(step) {
    const frames = state.data.frames;
    if (!frames.length) return;
    step = Math.max(frames[0].step, Math.min(step, frames[frames.length - 1].step));
    const f = frameAt(step) || frames[frames.length - 1];
    state.step = f.step;
    slider.value = f.step;
    frame.src = url(f.sha256);
    frame.dataset.step = f.step;
    frame.dataset.sha = f.sha256;
    stepLabel.textContent = f.step;
    const m = state.data.metrics, i = m.step ? m.step.indexOf(f.step) : -1;
    numbers.innerHTML = "";
    for (const name of wanted) {
      if (!m[name] || i < 0) continue;
      const v = m[name][i];
      const tr = numbers.insertRow();
      tr.insertCell().textContent = DriftCharts.label(name);
      tr.insertCell().textContent = v == null ? "–" : (Math.abs(v) >= 100 ? v.toFixed(1) : v.toFixed(3));
    }
    for (const p of state.plots) p.redraw(false, false);
    const u = new URL(location.href); u.searchParams.set("step", f.step); history.replaceState(null, "", u);
  }
  function marks() {
    const box = document.getElementById("marks");
    box.innerHTML = "";
    const max = Number(slider.max) || 1;
    const names = { half_life: "half-life", face_lost: "face lost", fixed_point: "fixed point",
                    thread_restart: "new thread" };
    for (const [key, text] of Object.entries(names)) {
      const step = state.data.markers[key];
      if (step == null) continue;
      const el = document.createElement("button");
      el.type = "button"; el.className = "mark " + key; el.title = text + " at step " + step;
      el.textContent = text; el.style.left = (100 * step / max) + "%";
      el.addEventListener("click", () => show(step));
      box.appendChild(el);
    }
  }
  function plots() {
    const box = document.getElementById("plots");
    box.innerHTML = ""; state.plots = [];
    const m = state.data.metrics;
    for (const name of viewer.dataset.plots.split(",")) {
      if (!m[name] || !m[name].some(v => v != null)) continue;
      state.plots.push(DriftCharts.make(box, DriftCharts.label(name), [{ label: name, steps: m.step, values: m[name] }], state));
    }
  }
  function start() {  // the frame list comes with the page: preloading starts before any metric arrives
    const frames = JSON.parse(document.getElementById("frames-data").textContent);
    if (!frames.length) return;
    state.data = { frames: frames, metrics: { step: [] }, markers: {} };
    slider.min = frames[0].step; slider.max = frames[frames.length - 1].step;
    const shown = Number(frame.dataset.step);
    state.step = shown; slider.value = shown;
    preload(frames);
  }
  function load(first) {
    return fetch(viewer.dataset.src, { credentials: "same-origin" }).then(r => r.json()).then(d => {
      state.data = d;
      const frames = d.frames;
      if (!frames.length) return;
      slider.min = frames[0].step; slider.max = frames[frames.length - 1].step;
      stepMax.textContent = frames[frames.length - 1].step;
      original.src = url(frames[0].sha256);
      preload(frames);
      marks(); plots();
      const asked = first && viewer.dataset.step !== "" ? Number(viewer.dataset.step) : state.step;
      const fresh = first && !state.touched && viewer.dataset.step === "";
      show(fresh ? frames[frames.length - 1].step : (state.touched ? state.step : asked));
      state.ready = true;
      if (d.status === "running" && !state.ended) follow();
    });
  }
  // A chain still being written: the run's server-sent events say when a frame arrives; read the chain
  // again then (one request per new step, none while nothing happens), and once more at the end.
  function follow() {
    if (state.source) return;
    state.followed = true;
    const source = new EventSource("/runs/" + encodeURIComponent(run) + "/events");
    state.source = source;
    const chain = Number(viewer.dataset.chain);
    let busy = false;
    function refresh() {
      if (busy) return;
      busy = true;
      load(false).finally(() => { busy = false; });
    }
    source.addEventListener("progress", e => {
      const p = JSON.parse(e.data);
      const mine = p.latest.find(f => f.chain === chain);
      const frames = state.data ? state.data.frames : [];
      if (mine && (!frames.length || mine.step > frames[frames.length - 1].step)) refresh();
    });
    source.addEventListener("end", () => { source.close(); state.source = null; state.ended = true; load(false); });
  }
  function play() {
    if (state.timer) { clearInterval(state.timer); state.timer = null; playBtn.textContent = "▶"; return; }
    playBtn.textContent = "❚❚";
    if (state.step >= Number(slider.max)) show(Number(slider.min));
    state.timer = setInterval(() => {
      if (state.step >= Number(slider.max)) { play(); return; }
      show(state.step + 1);
    }, 1000 / Number(speed.value));
  }
  slider.addEventListener("input", () => { state.touched = true; show(Number(slider.value)); });
  playBtn.addEventListener("click", () => { state.touched = true; play(); });
  speed.addEventListener("change", () => { if (state.timer) { play(); play(); } });
  document.addEventListener("keydown", e => {
    if (e.target && ["INPUT", "SELECT", "TEXTAREA"].includes(e.target.tagName) && e.target !== slider) return;
    state.touched = true;
    if (e.key === "ArrowRight") { show(state.step + 1); e.preventDefault(); }
    else if (e.key === "ArrowLeft") { show(state.step - 1); e.preventDefault(); }
    else if (e.key === " ") { play(); e.preventDefault(); }
    else if (e.key === "Home") { show(Number(slider.min)); e.preventDefault(); }
    else if (e.key === "End") { show(Number(slider.max)); e.preventDefault(); }
  });
  start();
  load(true);
})();
