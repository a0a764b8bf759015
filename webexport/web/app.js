// The demo page: webcam or a chosen video/image, boxes drawn over it, FPS and runtime shown.
// ?runtime=auto|litert-threads|litert|tfjs picks the runtime (the select reloads with it);
// ?precision=fp32 runs LiteRT.js's float model; ?variant=tfjs_uint8/model.json another TF.js one.
// ?image=<url> runs once on that image and exposes window.handsResult (used by the tests);
// ?camera=1 starts the webcam at once. While a stream runs, window.handsStats counts the frames
// processed and those with a hand, and keeps the last frame's detections.
(async function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const canvas = $("view"), ctx = canvas.getContext("2d"), video = $("video");
  const params = new URLSearchParams(location.search);
  const colors = ["#f43f5e", "#22c55e", "#3b82f6", "#f59e0b", "#a855f7", "#14b8a6", "#eab308"];
  let detector, running = false;
  const stats = (window.handsStats = { frames: 0, withHands: 0, last: [] });

  function draw(source, found) {
    const w = source.videoWidth || source.naturalWidth || source.width;
    const h = source.videoHeight || source.naturalHeight || source.height;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(source, 0, 0, w, h);
    ctx.lineWidth = Math.max(2, w / 320);
    ctx.font = `${Math.max(14, w / 60)}px system-ui`;
    for (const d of found) {
      const [x, y, bw, bh] = d.bbox;
      ctx.strokeStyle = ctx.fillStyle = colors[(d.classId - 1) % colors.length];
      ctx.strokeRect(x, y, bw, bh);
      const text = `${d.label} ${(d.score * 100).toFixed(0)}%`;
      const tw = ctx.measureText(text).width + 8;
      ctx.fillRect(x, Math.max(0, y - 22), tw, 22);
      ctx.fillStyle = "#000";
      ctx.fillText(text, x + 4, Math.max(16, y - 6));
    }
    $("fps").textContent = `${detector.fps.toFixed(1)} FPS`;
  }

  async function loop() {
    if (!running) return;
    if (video.readyState >= 2) {
      const found = await detector.detect(video, { scoreThreshold: +$("threshold").value });
      draw(video, found);
      stats.frames += 1;
      stats.withHands += found.length > 0 ? 1 : 0;
      stats.last = found;
    }
    if (!video.ended) requestAnimationFrame(loop); else running = false;
  }

  async function playStream(setup) {
    running = false;
    await setup();
    await video.play();
    running = true;
    loop();
  }

  async function runImage(url) {
    const img = new Image();
    img.src = url;
    await img.decode();
    const found = await detector.detect(img, { scoreThreshold: +$("threshold").value });
    draw(img, found);
    return found;
  }

  try {
    $("runtime").value = params.get("runtime") || "auto";
    $("runtime").onchange = () => {
      params.set("runtime", $("runtime").value);
      location.search = params.toString();
    };
    detector = window.handsDetector = await hands.load({
      model: params.get("model") || "model/",
      runtime: params.get("runtime") || "auto",
      precision: params.get("precision") || undefined,
      variant: params.get("variant") || undefined,
    });
    $("status").textContent = `model ready: ${detector.detail}`;
    $("status").title = detector.notes.join("\n");
    document.body.dataset.runtime = detector.runtime;
  } catch (err) {
    $("status").textContent = `could not load the model: ${err.message}`;
    document.body.dataset.error = err.message;
    return;
  }

  const startCamera = () => playStream(async () => {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  }).catch((e) => {
    $("status").textContent = `webcam unavailable: ${e.message}`;
    document.body.dataset.error = `webcam unavailable: ${e.message}`;
  });
  $("camera").onclick = startCamera;

  $("file").onchange = async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const url = URL.createObjectURL(file);
    if (file.type.startsWith("image/")) { running = false; await runImage(url); return; }
    playStream(async () => { video.srcObject = null; video.src = url; });
  };

  if (params.get("image")) {
    window.handsResult = await runImage(params.get("image"));
    window.handsBackend = detector.runtime;
  }
  document.body.dataset.ready = "1";
  if (params.get("camera") === "1") startCamera();
})();
