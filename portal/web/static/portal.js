// medchain portal: progressive enhancements. Every page works without this script; with it,
// live parts refresh themselves (data-live), and a patient's records open with the progress of
// the access requests shown as they happen (data-open).
"use strict";

// Live parts: fetch the part's URL every data-every milliseconds while the page is visible,
// and replace the part when it changed.
for (const el of document.querySelectorAll("[data-live]")) {
  const every = Number(el.dataset.every) || 3000;
  let last = "";
  const tick = async () => {
    if (document.hidden) return;
    try {
      const r = await fetch(el.dataset.live, { credentials: "same-origin", headers: { Accept: "text/html" } });
      if (!r.ok) return;
      const html = await r.text();
      if (html !== last) {
        last = html;
        el.innerHTML = html;
      }
    } catch (e) {
      // the node or the network is away for a moment: try again at the next tick
    }
  };
  setInterval(tick, every);
}
