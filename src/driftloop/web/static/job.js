// A job page: wait for the worker's run to appear (then go to it), or show why the worker failed.
"use strict";
(function () {
  const box = document.getElementById("job");
  if (!box) return;
  function poll() {
    fetch(box.dataset.src, { credentials: "same-origin" }).then(r => r.json()).then(j => {
      if (j.returncode != null && j.returncode !== 0) {
        document.getElementById("job-state").textContent = "the worker stopped with exit code " + j.returncode + ":";
        const log = document.getElementById("job-log"); log.hidden = false; log.textContent = j.log;
        return;
      }
      if (j.run_id && (box.dataset.kind !== "render" || j.returncode === 0)) { location.href = "/runs/" + encodeURIComponent(j.run_id); return; }
      setTimeout(poll, 500);
    });
  }
  poll();
})();
