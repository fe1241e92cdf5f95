// A live chart of the webcam stream: yaw, pitch and roll of each tracked head over the last
// WINDOW_S seconds, a line per track id with a band of +-1 sigma where the model gives one.
// Plain canvas, no library: app.js sends each answer as a "headpose:answer" event and a
// "headpose:reset" event when the stream stops.
(() => {
  "use strict";
  const WINDOW_S = 10;
  const ANGLES = ["yaw", "pitch", "roll"];
  const COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf"];
  const canvas = document.getElementById("chart");
  if (!canvas) return;
  const ctx = canvas.getContext("2d");
  let tracks = new Map(); // track id -> [{t, yaw, pitch, roll, sigma}]
  let t0 = null;

  function add(answer) {
    const now = performance.now() / 1000;
    if (t0 === null) t0 = now;
    const t = now - t0;
    (answer.heads || []).forEach((h, i) => {
      const id = h.track_id ?? `(${i})`;
      if (!tracks.has(id)) tracks.set(id, []);
      tracks.get(id).push({ t, yaw: h.yaw, pitch: h.pitch, roll: h.roll, sigma: h.sigma });
    });
    for (const [id, pts] of tracks) {
      while (pts.length && pts[0].t < t - WINDOW_S) pts.shift();
      if (!pts.length) tracks.delete(id);
    }
    draw(t);
  }

  function draw(now) {
    const w = canvas.width;
    const h = canvas.height;
    const panel = h / ANGLES.length;
    const left = 44;
    ctx.clearRect(0, 0, w, h);
    ctx.font = "11px system-ui, sans-serif";
    const x = (t) => left + ((t - (now - WINDOW_S)) / WINDOW_S) * (w - left - 6);
    ANGLES.forEach((name, k) => {
      const top = k * panel;
      let lo = -30;
      let hi = 30;
      for (const pts of tracks.values()) {
        for (const p of pts) {
          const v = p[name];
          if (v === null || v === undefined) continue;
          const s = p.sigma ? p.sigma[k] || 0 : 0;
          lo = Math.min(lo, v - s);
          hi = Math.max(hi, v + s);
        }
      }
      const y = (v) => top + 4 + (1 - (v - lo) / (hi - lo)) * (panel - 8);
      ctx.strokeStyle = "#ddd";
      ctx.fillStyle = "#666";
      ctx.beginPath();
      ctx.moveTo(left, y(0));
      ctx.lineTo(w, y(0));
      ctx.stroke();
      ctx.fillText(`${name}`, 2, top + 12);
      ctx.fillText(`${Math.round(hi)}°`, 2, top + 26);
      ctx.fillText(`${Math.round(lo)}°`, 2, top + panel - 4);
      let n = 0;
      for (const [id, pts] of tracks) {
        const c = COLOURS[n++ % COLOURS.length];
        const ok = pts.filter((p) => p[name] !== null && p[name] !== undefined);
        if (ok.length < 2) continue;
        if (ok.every((p) => p.sigma && p.sigma[k] !== null)) {
          ctx.globalAlpha = 0.2;
          ctx.fillStyle = c;
          ctx.beginPath();
          ok.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), y(p[name] + p.sigma[k])));
          for (let i = ok.length - 1; i >= 0; i--) ctx.lineTo(x(ok[i].t), y(ok[i][name] - ok[i].sigma[k]));
          ctx.closePath();
          ctx.fill();
          ctx.globalAlpha = 1;
        }
        ctx.strokeStyle = c;
        ctx.lineWidth = 1.5;
        ctx.beginPath();
        ok.forEach((p, i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, x(p.t), y(p[name])));
        ctx.stroke();
        if (k === 0) {
          ctx.fillStyle = c;
          ctx.fillText(`#${id}`, x(ok[ok.length - 1].t) - 24, y(ok[ok.length - 1][name]) - 4);
        }
      }
    });
    canvas.dataset.tracks = [...tracks.keys()].join(",");
    canvas.dataset.points = String([...tracks.values()].reduce((a, p) => a + p.length, 0));
  }

  window.addEventListener("headpose:answer", (ev) => add(ev.detail));
  window.addEventListener("headpose:reset", () => {
    tracks = new Map();
    t0 = null;
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    canvas.dataset.tracks = "";
    canvas.dataset.points = "0";
  });
})();
