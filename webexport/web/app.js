// The demo page: webcam or a chosen video/image, hands drawn over it (box, left/right, id, the
// 21-keypoint skeleton), FPS and runtime shown. The webcam is shown mirrored, as a selfie view;
// left/right is always the person's own hand.
// ?runtime=auto|litert-threads|litert|tfjs picks the runtime (the select reloads with it);
// ?precision=fp32 runs LiteRT.js's float model; ?variant=tfjs_uint8/model.json another TF.js one;
// The landmark stage runs for a hand model (one class, hand): ?landmarks=0 turns it off (boxes
// only), ?landmarks=full takes the full landmark model.
// ?image=<url> runs once on that image and exposes window.handsResult (used by the tests);
// ?camera=1 starts the webcam at once; ?video=<url> plays that video. While a stream runs, hands are tracked (ids), and
// window.handsStats counts the frames processed and those with a hand, and keeps the last
// frame's detections.
(async function () {
  "use strict";
  const $ = (id) => document.getElementById(id);
  const canvas = $("view"), ctx = canvas.getContext("2d"), video = $("video");
  const params = new URLSearchParams(location.search);
  const colors = ["#f43f5e", "#22c55e", "#3b82f6", "#f59e0b", "#a855f7", "#14b8a6", "#eab308"];
  // MediaPipe's 21 hand landmarks: wrist; thumb, index, middle, ring, pinky (base to tip)
  const SKELETON = [[0, 1], [1, 2], [2, 3], [3, 4], [0, 5], [5, 6], [6, 7], [7, 8], [5, 9],
    [9, 10], [10, 11], [11, 12], [9, 13], [13, 14], [14, 15], [15, 16], [13, 17], [0, 17],
    [17, 18], [18, 19], [19, 20]];
  let detector, running = false, mirror = false;
  const stats = (window.handsStats = { frames: 0, withHands: 0, last: [], drawn: [] });

  // The picture, and each hand on it; mirror: shown flipped (a selfie view), coordinates too.
  function draw(source, found) {
    const w = source.videoWidth || source.naturalWidth || source.width;
    const h = source.videoHeight || source.naturalHeight || source.height;
    if (canvas.width !== w || canvas.height !== h) { canvas.width = w; canvas.height = h; }
    const fx = (x) => (mirror ? w - x : x);
    ctx.save();
    if (mirror) { ctx.translate(w, 0); ctx.scale(-1, 1); }
    ctx.drawImage(source, 0, 0, w, h);
    ctx.restore();
    ctx.lineWidth = Math.max(2, w / 320);
    ctx.font = `${Math.max(14, w / 60)}px system-ui`;
    stats.drawn = [];
    for (const d of found) {
      const [x, y, bw, bh] = d.bbox;
      const left = mirror ? w - x - bw : x;
      const key = d.trackId ?? d.classId - 1;
      ctx.strokeStyle = ctx.fillStyle = colors[key % colors.length];
      ctx.strokeRect(left, y, bw, bh);
      if (d.keypoints) {
        ctx.beginPath();
        for (const [a, b] of SKELETON) {
          ctx.moveTo(fx(d.keypoints[a][0]), d.keypoints[a][1]);
          ctx.lineTo(fx(d.keypoints[b][0]), d.keypoints[b][1]);
        }
        ctx.stroke();
        for (const [px, py] of d.keypoints) ctx.fillRect(fx(px) - 2, py - 2, 4, 4);
      }
      const text = [d.label, `${(d.score * 100).toFixed(0)}%`,
                    d.trackId !== undefined ? `#${d.trackId}` : "", d.handedness || ""]
        .filter(Boolean).join(" ");
      const tw = ctx.measureText(text).width + 8;
      ctx.fillRect(left, Math.max(0, y - 22), tw, 22);
      ctx.fillStyle = "#000";
      ctx.fillText(text, left + 4, Math.max(16, y - 6));
      stats.drawn.push({ text, bbox: [left, y, bw, bh], skeleton: Boolean(d.keypoints) });
    }
    $("fps").textContent = `${detector.fps.toFixed(1)} FPS`;
  }

  async function loop() {
    if (!running) return;
    if (video.readyState >= 2) {
      const found = await detector.detect(video, { scoreThreshold: +$("threshold").value,
                                                  track: true });
      draw(video, found);
      stats.frames += 1;
      stats.withHands += found.length > 0 ? 1 : 0;
      stats.last = found;
    }
    if (!video.ended) requestAnimationFrame(loop); else running = false;
  }

  // Chromium and Firefox play H.264 (.mp4) and VP9 (.webm), not MPEG-4 part 2 ("mp4v", what
  // OpenCV writes): a video that does not decode is said on the page, not left black.
  const PLAYABLE = "browsers play H.264 (.mp4) and VP9 (.webm), not MPEG-4 part 2 (mp4v); " +
    "hands-detect --codec h264 (the default with PyAV) writes one that plays";
  function showError(message) {
    running = false;
    $("status").textContent = message;
    document.body.dataset.error = message;
  }
  video.onerror = () => {
    const err = video.error;
    if (!err || video.srcObject) return;
    const why = { 1: "loading aborted", 2: "network error", 3: "cannot decode it",
                  4: "format or codec not supported" }[err.code] || `error ${err.code}`;
    showError(`cannot play this video (${why}): ${PLAYABLE}`);
  };

  async function playStream(setup, mirrored) {
    running = false;
    mirror = mirrored;
    detector.reset();
    delete document.body.dataset.error;
    await setup();
    try {
      await video.play();
    } catch (e) {
      if (!document.body.dataset.error) showError(`cannot play this video: ${e.message}`);
      return;
    }
    const mode = detector.landmarker
      ? "keypoints, left/right and ids: each hand followed by its keypoints, the detector " +
        "every 5-10 frames"
      : "boxes only";
    $("status").textContent = `playing, ${mode} (${detector.detail})`;
    document.body.dataset.mode = detector.landmarker ? "keypoints" : "boxes";
    running = true;
    loop();
  }

  async function runImage(url) {
    mirror = false;
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
    const landmarks = params.get("landmarks") || "auto";
    detector = window.handsDetector = await hands.load({
      model: params.get("model") || "model/",
      runtime: params.get("runtime") || "auto",
      precision: params.get("precision") || undefined,
      variant: params.get("variant") || undefined,
      landmarks: { 0: false, auto: "auto" }[landmarks] ?? { model: landmarks },
      params: params.get("maxHands") ? { maxHands: +params.get("maxHands") } : undefined,
    });
    const stage = detector.landmarker ? `, keypoints: ${detector.landmarks.model}` : "";
    $("status").textContent = `model ready: ${detector.detail}${stage}`;
    $("status").title = detector.notes.join("\n");
    document.body.dataset.runtime = detector.runtime;
  } catch (err) {
    $("status").textContent = `could not load the model: ${err.message}`;
    document.body.dataset.error = err.message;
    return;
  }

  const startCamera = () => playStream(async () => {
    video.srcObject = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  }, true).catch((e) => {
    $("status").textContent = `webcam unavailable: ${e.message}`;
    document.body.dataset.error = `webcam unavailable: ${e.message}`;
  });
  $("camera").onclick = startCamera;

  $("file").onchange = async (e) => {
    const file = e.target.files[0];
    if (!file) return;
    const url = URL.createObjectURL(file);
    if (file.type.startsWith("image/")) { running = false; await runImage(url); return; }
    playStream(async () => { video.srcObject = null; video.src = url; }, false);
  };

  if (params.get("image")) {
    window.handsResult = await runImage(params.get("image"));
    window.handsBackend = detector.runtime;
  }
  document.body.dataset.ready = "1";
  if (params.get("camera") === "1") startCamera();
  if (params.get("video")) {
    playStream(async () => { video.srcObject = null; video.src = params.get("video"); }, false);
  }
})();
