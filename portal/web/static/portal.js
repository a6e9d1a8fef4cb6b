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

// Opening a patient's records: show each step of the access requests as the server reports it
// (server-sent events), then the records.
for (const el of document.querySelectorAll("[data-open]")) {
  const steps = el.querySelector(".progress");
  const pending = steps.querySelector(".pending");
  const records = document.getElementById("records");
  const es = new EventSource(el.dataset.open);
  const step = (text) => {
    const li = document.createElement("li");
    li.textContent = text;
    steps.insertBefore(li, pending);
  };
  es.addEventListener("progress", (e) => step(e.data));
  es.addEventListener("done", (e) => {
    es.close();
    pending.remove();
    records.innerHTML = e.data;
  });
  es.addEventListener("failed", (e) => {
    es.close();
    pending.remove();
    const p = document.createElement("p");
    p.className = "error";
    p.setAttribute("role", "alert");
    p.textContent = e.data;
    el.appendChild(p);
  });
  es.onerror = () => {
    if (es.readyState === EventSource.CLOSED) return;
    es.close(); // never open the records twice on a reconnect
    pending.textContent = "The connection was lost. Reload the page to try again.";
  };
}

// Scanning a pack's code with the camera, where the browser can decode barcodes (the
// BarcodeDetector API: Chrome on Android and macOS, among others). The code found fills the
// field and the form is sent; elsewhere the button stays hidden and one pastes or uses a
// handheld scanner (which types the code into the field).
for (const button of document.querySelectorAll("[data-scan]")) {
  if (!("BarcodeDetector" in window) || !navigator.mediaDevices?.getUserMedia) continue;
  const field = document.getElementById(button.dataset.scan);
  const video = document.getElementById("camera");
  const status = document.getElementById("scan-status");
  button.hidden = false;
  button.addEventListener("click", async () => {
    let stream;
    try {
      const wanted = ["data_matrix", "qr_code", "ean_13", "code_128"];
      const supported = await BarcodeDetector.getSupportedFormats();
      const detector = new BarcodeDetector({ formats: wanted.filter((f) => supported.includes(f)) });
      stream = await navigator.mediaDevices.getUserMedia({ video: { facingMode: "environment" } });
      video.srcObject = stream;
      video.hidden = false;
      await video.play();
      status.textContent = "Looking for a code…";
      for (;;) {
        const found = await detector.detect(video);
        if (found.length > 0) {
          field.value = found[0].rawValue;
          status.textContent = "Code read; verifying…";
          field.form.requestSubmit();
          break;
        }
        await new Promise((r) => setTimeout(r, 200));
      }
    } catch (e) {
      status.textContent = "The camera could not be used (" + e.message + "); paste or type the code instead.";
    } finally {
      stream?.getTracks().forEach((t) => t.stop());
      video.hidden = true;
    }
  });
}
