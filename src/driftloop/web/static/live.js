// Live progress of running runs (server-sent events), and the run page's compare picker.
"use strict";
(function () {
  function fmt(s) { if (s == null) return "–"; if (s < 90) return s.toFixed(1) + " s"; return (s / 60).toFixed(1) + " min"; }
  for (const el of document.querySelectorAll(".progress[data-run]")) {
    const bar = el.querySelector("progress"), text = el.querySelector(".progress-text");
    const run = el.dataset.run;
    function update(p) {
      bar.max = p.n_steps; bar.value = p.steps_done;
      text.textContent = p.status + " · step " + p.steps_done + " of " + p.n_steps + " · " + (p.s_per_step == null ? "–" : p.s_per_step.toFixed(2)) + " s/step · ETA " + fmt(p.eta_s);
      el.dataset.status = p.status;
      const badge = document.getElementById("status");
      if (badge) { badge.textContent = p.status; badge.className = "badge " + p.status; }
      const table = el.querySelector("table.workers");
      if (table && p.workers && p.workers.length) {  // a Ray run: one line per worker
        const body = table.querySelector("tbody");
        body.replaceChildren(...p.workers.map(w => {
          const tr = document.createElement("tr");
          const rate = w.copies_per_s == null ? "–" : w.copies_per_s.toFixed(2);
          for (const v of [w.name.split(":").pop(), String(w.node).slice(0, 12) + " " + w.host, w.device, w.state, w.copies, rate, w.failures, w.restarts]) {
            const td = document.createElement("td"); td.textContent = v; tr.appendChild(td);
          }
          return tr;
        }));
        table.hidden = false;
      }
      for (const f of p.latest) {
        const cell = document.querySelector('.last-step[data-chain="' + f.chain + '"]');
        if (cell) cell.textContent = f.step;
        const img = document.querySelector('.last-thumb[data-chain="' + f.chain + '"]');
        if (img) img.src = "/thumbs/" + encodeURIComponent(run) + "/" + f.sha256 + "/128.webp";
      }
    }
    if (el.dataset.status !== "running") {
      fetch("/runs/" + encodeURIComponent(run) + "/progress.json", { credentials: "same-origin" }).then(r => r.json()).then(update);
      continue;
    }
    const source = new EventSource("/runs/" + encodeURIComponent(run) + "/events");
    source.addEventListener("progress", e => update(JSON.parse(e.data)));
    source.addEventListener("end", e => {
      update(JSON.parse(e.data)); source.close();
      if (document.getElementById("status")) {  // the run page shows the finished run: reload it, and say so
        document.documentElement.dataset.reloading = "1";
        setTimeout(() => location.reload(), 300);
      }
      const live = el.closest(".live-run");  // the live page lists running runs only
      if (live) live.remove();
    });
  }
  const link = document.getElementById("compare-link");
  if (link) {
    const boxes = Array.from(document.querySelectorAll("input.pick"));
    function refresh() {
      const ticked = boxes.filter(b => b.checked).slice(0, 4).map(b => "c=" + encodeURIComponent(b.value));
      link.href = "/compare" + (ticked.length ? "?" + ticked.join("&") : "");
    }
    boxes.forEach(b => b.addEventListener("change", refresh));
    refresh();
  }
})();
