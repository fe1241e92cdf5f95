// The openheadpose page: a photo goes to POST v1/predict; the webcam streams JPEG frames
// over the WebSocket v1/stream, one frame in flight at a time, and every answer is drawn
// over the live video. Plain JavaScript, nothing loaded from elsewhere.
//
// Options in the page's URL are passed on to the API: ?key=... (the API key, also
// typed in the page), ?model=..., ?detector=..., ?min_score=..., ?fov=... .
// #status carries what the page shows in data attributes (data-heads, data-track-ids,
// data-frames, data-state, data-error), for scripts and tests.
"use strict";

(() => {
  const $ = (id) => document.getElementById(id);
  const canvas = $("view");
  const ctx = canvas.getContext("2d");
  const video = $("video");
  const status = $("status");
  const params = new URLSearchParams(location.search);
  const OPTIONS = ["model", "detector", "landmarker", "pose", "keypoints", "min_score", "fov"];
  const AXIS_COLOURS = ["#e33", "#2c2", "#38f"]; // x (the person's left), y (up), z (facing)
  const MAX_SIDE = 640; // frames sent over the WebSocket are at most this wide

  if (params.get("key")) $("key").value = params.get("key");

  let ws = null;
  let camera = null;
  let inFlight = false;
  let lastAnswer = null;
  let frames = 0;
  let window0 = performance.now();
  let windowCount = 0;

  const key = () => $("key").value.trim();

  function apiUrl(path, extra = {}) {
    const u = new URL(path, location.href);
    for (const k of OPTIONS) if (params.has(k)) u.searchParams.set(k, params.get(k));
    for (const [k, v] of Object.entries(extra)) u.searchParams.set(k, String(v));
    return u;
  }

  function message(text, isError = false) {
    const m = $("message");
    m.textContent = text;
    m.className = isError ? "error" : "muted";
  }

  function showError(body, fallback) {
    const e = body && body.error;
    status.dataset.error = e ? e.code : "error";
    message(e ? `${e.code}: ${e.message}` : fallback, true);
  }

  function fmt(v, digits = 1) {
    return v === null || v === undefined ? "–" : Number(v).toFixed(digits);
  }

  // A head's distance from the camera, "1.45 m ± 0.19" (its position in metres, sigma along
  // the line of sight: what `headpose predict --distance` writes); "" when it has none.
  function distance(h) {
    if (!h.position) return "";
    const d = Math.hypot(...h.position);
    if (!h.position_sigma || d <= 0) return `${d.toFixed(2)} m`;
    const s = Math.sqrt(h.position.reduce((acc, p, k) => acc + (p / d) ** 2 * h.position_sigma[k] ** 2, 0));
    return `${d.toFixed(2)} m ± ${s.toFixed(2)}`;
  }

  function setStatus(answer) {
    const heads = answer.heads || [];
    frames += 1;
    status.dataset.heads = String(heads.length);
    status.dataset.trackIds = heads.map((h) => h.track_id).filter((id) => id !== null && id !== undefined).join(",");
    status.dataset.frames = String(frames);
    delete status.dataset.error;
    $("heads-count").textContent = String(heads.length);
    if (answer.dropped !== undefined) $("dropped").textContent = `${answer.received} frames sent, ${answer.dropped} dropped by the server`;
    const body = $("table").tBodies[0];
    body.replaceChildren(
      ...heads.map((h, i) => {
        const tr = document.createElement("tr");
        const sigma = h.sigma ? h.sigma.map((s) => fmt(s)).join("/") : "–";
        for (const v of [h.track_id ?? `(${i})`, fmt(h.yaw), fmt(h.pitch), fmt(h.roll), sigma, distance(h) || "–"]) {
          const td = document.createElement("td");
          td.textContent = String(v);
          tr.appendChild(td);
        }
        return tr;
      }),
    );
  }

  function label(lines, x, y) {
    ctx.font = "13px system-ui, sans-serif";
    const w = Math.max(...lines.map((l) => ctx.measureText(l).width)) + 8;
    const h = 16 * lines.length + 4;
    const left = Math.min(Math.max(0, x), canvas.width - w);
    const top = Math.min(Math.max(0, y - h), canvas.height - h);
    ctx.fillStyle = "rgba(0, 0, 0, 0.65)";
    ctx.fillRect(left, top, w, h);
    ctx.fillStyle = "#fff";
    lines.forEach((l, i) => ctx.fillText(l, left + 4, top + 15 + 16 * i));
  }

  // Boxes, the head's three axes (orthographic: u = cx + L R[0][i], v = cy - L R[1][i],
  // as openheadpose.inference.draw.project_points) and the angles of every head.
  function drawHeads(heads) {
    for (const h of heads) {
      const [x1, y1, x2, y2] = h.box;
      ctx.lineWidth = 2;
      ctx.strokeStyle = "#ffd400";
      ctx.strokeRect(x1, y1, x2 - x1, y2 - y1);
      const cx = (x1 + x2) / 2;
      const cy = (y1 + y2) / 2;
      const len = 0.6 * (x2 - x1);
      const R = h.rotation;
      ctx.lineWidth = 3;
      for (let i = 0; i < 3; i++) {
        ctx.strokeStyle = AXIS_COLOURS[i];
        ctx.beginPath();
        ctx.moveTo(cx, cy);
        ctx.lineTo(cx + len * R[0][i], cy - len * R[1][i]);
        ctx.stroke();
      }
      const lines = [`${h.track_id !== null && h.track_id !== undefined ? "#" + h.track_id + "  " : ""}yaw ${fmt(h.yaw)}  pitch ${fmt(h.pitch)}  roll ${fmt(h.roll)}`];
      if (h.sigma) lines.push(`σ ${h.sigma.map((s) => fmt(s)).join(" / ")}`);
      const d = distance(h);
      if (d) lines.push(d);
      label(lines, x1, y1 - 2);
    }
  }

  function countRate() {
    windowCount += 1;
    const now = performance.now();
    if (now - window0 >= 1000) {
      $("fps").textContent = `${((1000 * windowCount) / (now - window0)).toFixed(1)} fps`;
      window0 = now;
      windowCount = 0;
    }
  }

  // ------------------------------------------------------------------ a photo
  $("photo").addEventListener("change", async (ev) => {
    const file = ev.target.files[0];
    if (!file) return;
    stopWebcam();
    status.dataset.state = "predicting";
    message(`${file.name}: finding heads…`);
    let bitmap;
    try {
      bitmap = await createImageBitmap(file, { imageOrientation: "from-image" }); // EXIF, as the server
    } catch (e) {
      bitmap = null;
    }
    const t0 = performance.now();
    let r;
    let body;
    try {
      r = await fetch(apiUrl("v1/predict"), { method: "POST", body: file, headers: key() ? { "X-API-Key": key() } : {} });
      body = await r.json();
    } catch (e) {
      status.dataset.state = "idle";
      showError(null, `${file.name}: ${e}`);
      return;
    }
    status.dataset.state = "idle";
    if (!r.ok) {
      showError(body, `${file.name}: HTTP ${r.status}`);
      return;
    }
    if (bitmap) {
      canvas.width = bitmap.width;
      canvas.height = bitmap.height;
      ctx.drawImage(bitmap, 0, 0);
    }
    drawHeads(body.heads);
    setStatus(body);
    $("fps").textContent = `${(performance.now() - t0).toFixed(0)} ms`;
    $("dropped").textContent = "";
    message(`${file.name}: ${body.heads.length} heads (${body.width}×${body.height})`);
  });

  // ------------------------------------------------------------------ the webcam
  const grab = document.createElement("canvas");

  async function startWebcam() {
    stopWebcam();
    try {
      camera = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
    } catch (e) {
      showError(null, `no webcam: ${e.message || e}`);
      return;
    }
    video.srcObject = camera;
    await video.play();
    const u = apiUrl("v1/stream", { smooth: $("smooth").checked });
    u.protocol = location.protocol === "https:" ? "wss:" : "ws:";
    if (key()) u.searchParams.set("key", key());
    ws = new WebSocket(u);
    ws.onopen = () => {
      status.dataset.state = "streaming";
      message("streaming");
    };
    ws.onmessage = (ev) => {
      inFlight = false;
      const answer = JSON.parse(ev.data);
      if (answer.error) {
        showError(answer, "error");
        return;
      }
      lastAnswer = answer;
      setStatus(answer);
      countRate();
      window.dispatchEvent(new CustomEvent("headpose:answer", { detail: answer })); // chart.js
    };
    ws.onclose = (ev) => {
      if (ws && ev.code !== 1000) showError(null, `stream closed (${ev.code}${ev.reason ? ": " + ev.reason : ""})`);
      ws = null;
      stopWebcam();
    };
    $("webcam").disabled = true;
    $("stop").disabled = false;
    requestAnimationFrame(tick);
  }

  function tick() {
    if (!camera) return;
    const vw = video.videoWidth;
    const vh = video.videoHeight;
    if (vw && vh) {
      const s = Math.min(1, MAX_SIDE / Math.max(vw, vh));
      const w = Math.round(vw * s);
      const h = Math.round(vh * s);
      if (canvas.width !== w || canvas.height !== h) {
        canvas.width = w;
        canvas.height = h;
      }
      ctx.drawImage(video, 0, 0, w, h);
      if (lastAnswer) drawHeads(lastAnswer.heads);
      if (!inFlight && ws && ws.readyState === WebSocket.OPEN) {
        inFlight = true; // at most one frame in flight: the newest is sent when the answer comes
        grab.width = w;
        grab.height = h;
        grab.getContext("2d").drawImage(video, 0, 0, w, h);
        grab.toBlob(
          (blob) => {
            if (blob && ws && ws.readyState === WebSocket.OPEN) ws.send(blob);
            else inFlight = false;
          },
          "image/jpeg",
          0.85,
        );
      }
    }
    requestAnimationFrame(tick);
  }

  function stopWebcam() {
    if (ws) {
      const w = ws;
      ws = null;
      w.close(1000);
    }
    if (camera) {
      camera.getTracks().forEach((t) => t.stop());
      camera = null;
    }
    inFlight = false;
    lastAnswer = null;
    window.dispatchEvent(new Event("headpose:reset")); // chart.js
    status.dataset.state = "idle";
    $("webcam").disabled = false;
    $("stop").disabled = true;
  }

  $("webcam").addEventListener("click", startWebcam);
  $("stop").addEventListener("click", stopWebcam);

  // The server's models, for the header line.
  fetch(apiUrl("v1/info"), { headers: key() ? { "X-API-Key": key() } : {} })
    .then((r) => (r.ok ? r.json() : null))
    .then((info) => {
      if (info && info.stages) $("server").textContent = Object.entries(info.stages).map(([k, v]) => `${k}: ${v}`).join(", ");
    })
    .catch(() => {});
})();
