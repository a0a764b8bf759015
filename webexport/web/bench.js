// The browser bench: every runtime of ours (hands.js) and handtrack.js, in ONE page, on the
// same frames, interleaved: each round runs every contender in turn (the starting contender
// rotates), the first `warmup` rounds are dropped.
//   ?image=<url>  a still frame: detect() latency (resize + model + decode + NMS)
//   ?video=<url>  a looping video: end-to-end frames per second (the current frame decoded by
//                 the browser, resize, model, NMS, boxes drawn on a canvas); the contender with
//                 the landmark stage tracks the hands (its detector every 5 frames)
//   ?htj=<model.json> handtrack.js's graph; &rounds=, &reps= (calls per turn), &warmup=
//   &also=<model folder>&alsoName=<row name>: a second model, boxes only
//   ?builds=1     the files alone on each LiteRT.js build a browser may load (compat: no
//                 relaxed SIMD, as in browsers without it; relaxed SIMD, 1 thread; threads):
//                 the detector's int8 and fp32 networks, the landmark lite and lite_int8
//                 files; ms an invoke, the output read back
// Results land in window.benchResult.
(async function () {
  "use strict";
  const p = new URLSearchParams(location.search);
  const rounds = +(p.get("rounds") || 20), reps = +(p.get("reps") || 3);
  const warmup = +(p.get("warmup") || 2);
  const out = document.getElementById("out");
  const canvas = document.getElementById("view"), ctx = canvas.getContext("2d");

  function draw(source, found) {
    const w = source.videoWidth || source.naturalWidth, h = source.videoHeight || source.naturalHeight;
    if (canvas.width !== w) { canvas.width = w; canvas.height = h; }
    ctx.drawImage(source, 0, 0, w, h);
    ctx.strokeStyle = "#f43f5e"; ctx.lineWidth = 3;
    for (const d of found) ctx.strokeRect(...d.bbox);
  }

  // handtrack.js's own per-frame work: its graph (it resizes inside) to its raw outputs, read
  // back, best class per anchor, TF.js NMS, boxes scaled to the frame.
  function handtrack(model) {
    const nodes = ["StatefulPartitionedCall/Postprocessor/Slice",
                   "StatefulPartitionedCall/Postprocessor/ExpandDims_1"];
    return async (source) => {
      const x = tf.tidy(() => tf.browser.fromPixels(source).expandDims(0).toInt());
      const [scores, boxes] = await model.executeAsync(x, nodes);
      const s = await scores.data(), b = await boxes.data();
      const [, anchors, classes] = scores.shape;
      const best = new Float32Array(anchors);
      for (let a = 0; a < anchors; a++) {
        let m = 0;
        for (let c = 0; c < classes; c++) m = Math.max(m, s[a * classes + c]);
        best[a] = m;
      }
      const keep = await tf.image.nonMaxSuppressionAsync(
        tf.tensor2d(b, [anchors, 4]), best, 20, 0.2, 0.6);  // its defaults
      const idx = await keep.data();
      const w = source.videoWidth || source.naturalWidth, h = source.videoHeight || source.naturalHeight;
      const found = Array.from(idx, (i) => ({ bbox: [b[i * 4 + 1] * w, b[i * 4] * h,
        (b[i * 4 + 3] - b[i * 4 + 1]) * w, (b[i * 4 + 2] - b[i * 4]) * h], score: best[i] }));
      tf.dispose([x, scores, boxes, keep]);
      return found;
    };
  }

  // LiteRT.js's wasm builds: the file each loads, and its threads (as the page gives them)
  const BUILDS = [["compat", "litert_wasm_compat_internal.js", 1],
                  ["relaxed SIMD", "litert_wasm_internal.js", 1],
                  ["threads", "litert_wasm_threaded_internal.js",
                   Math.min(navigator.hardwareConcurrency || 2, 4)]];
  const FILES = [["network int8", "model/litert/model_int8.tflite"],
                 ["network fp32", "model/litert/model_fp32.tflite"],
                 ["landmarks lite", "vendor/mediapipe/hand_landmark_lite.tflite"],
                 ["landmarks lite_int8", "vendor/mediapipe/hand_landmark_lite_int8.tflite"]];

  // One contender a build and file: an invoke on a constant input, its outputs read back.
  async function buildContenders() {
    const bytes = await Promise.all(FILES.map(async ([, url]) => {
      const r = await fetch(url);
      if (!r.ok) throw new Error(`${url}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    }));
    const contenders = [];
    for (const [build, file, numThreads] of BUILDS) {  // a module instance each (another URL)
      const lr = await import(new URL(`vendor/litertjs/core/index.js?build=${build}`,
                                      location.href).href);
      await lr.loadLiteRt(new URL(`vendor/litertjs/wasm/${file}`, location.href).href,
                          numThreads > 1 ? { threads: true } : undefined);
      for (const [i, [name]] of FILES.entries()) {
        const model = await lr.loadAndCompile(bytes[i], { accelerator: "wasm",
                                                          cpuOptions: { numThreads } });
        const [input] = model.getInputDetails();
        const n = input.shape.reduce((a, b) => a * b, 1);
        const data = input.dtype === "uint8" ? new Uint8Array(n).fill(128)
          : new Float32Array(n).fill(0.5);
        contenders.push({
          name: `${build}: ${name}`, build, file: name,
          detail: `LiteRT.js ${file}, ${numThreads} thread${numThreads > 1 ? "s" : ""}`,
          fn: async () => {
            const x = new lr.Tensor(data, input.shape);
            const out = await model.run({ [input.name]: x });
            x.delete();
            for (const t of Object.values(out)) { t.toTypedArray(); t.delete(); }
            return [];
          },
        });
      }
    }
    return contenders;
  }

  // The page's runtimes (hands.js) and handtrack.js on an image or a playing video.
  async function pageContenders(video) {
    // TF.js first, so handtrack.js finds the global tf that our tfjs runtime loads
    const specs = [
      ["ours tfjs wasm", { runtime: "tfjs" }],
      ["ours litert-threads int8", { runtime: "litert-threads" }],
      ["ours litert int8 (1 thread)", { runtime: "litert" }],
      ["ours litert-threads fp32", { runtime: "litert-threads", precision: "fp32" }],
      ["ours litert-threads int8 + landmarks", { runtime: "litert-threads", landmarks: true }],
      ["ours litert-threads int8 + landmarks lite (float)",
       { runtime: "litert-threads", landmarks: { model: "lite" } }],
    ];
    if (p.get("also")) {  // a second model (e.g. the family's smallest), boxes only
      specs.push([p.get("alsoName"), { runtime: "litert-threads", model: p.get("also") }]);
    }
    const contenders = [];
    for (const [name, o] of specs) {
      const det = await hands.load(Object.assign({ model: "model/" }, o));
      // with the landmark stage, a video is tracked (the crops follow the hands)
      const opts = { track: video && Boolean(o.landmarks) };
      const lm = o.landmarks && (o.landmarks.model || det.landmarks.model);
      const size = o.model ? `, input ${det.rt.width}x${det.rt.height}` : "";
      contenders.push({ name, detail: det.detail + size + (lm ? `, landmarks ${lm}` : ""),
                        fn: (s) => det.detect(s, opts) });
    }
    if (p.get("htj")) {
      const model = await tf.loadGraphModel(p.get("htj"));
      contenders.push({ name: "handtrack.js ssd320fpnlite", detail: "TF.js wasm", fn: handtrack(model) });
    }
    return contenders;
  }

  const quantiles = (xs) => {
    const s = [...xs].sort((a, b) => a - b);
    const q = (f) => { const i = (s.length - 1) * f, lo = Math.floor(i);
                       return s[lo] + (s[Math.ceil(i)] - s[lo]) * (i - lo); };
    return { median: q(0.5), q1: q(0.25), q3: q(0.75), n: s.length };
  };

  try {
    const video = Boolean(p.get("video")), builds = p.get("builds") === "1";
    let source = null;
    if (video) {
      source = document.getElementById("video");
      source.src = p.get("video");
      source.loop = true; source.muted = true;
      await source.play();
    } else if (!builds) {
      source = new Image();
      source.src = p.get("image");
      await source.decode();
    }
    const contenders = builds ? await buildContenders() : await pageContenders(video);
    const times = contenders.map(() => []);
    for (let r = 0; r < rounds + warmup; r++) {
      for (let k = 0; k < contenders.length; k++) {
        const i = (r + k) % contenders.length;
        const t0 = performance.now();
        for (let j = 0; j < reps; j++) {
          const t1 = performance.now();
          const found = await contenders[i].fn(source);
          if (video) draw(source, found);
          else if (r >= warmup) times[i].push(performance.now() - t1);
        }
        if (video && r >= warmup) times[i].push(reps / ((performance.now() - t0) / 1000));
      }
      out.textContent = `round ${r + 1}/${rounds + warmup}`;
    }
    window.benchResult = {
      mode: video ? "video_fps" : builds ? "builds_ms" : "detect_ms",
      isolated: self.crossOriginIsolated,
      rounds, reps, warmup,
      rows: contenders.map((c, i) => Object.assign(
        { name: c.name, detail: c.detail }, builds ? { build: c.build, file: c.file } : {},
        quantiles(times[i]))),
    };
    out.textContent = JSON.stringify(window.benchResult, null, 2);
  } catch (err) {
    window.benchResult = { error: `${err.message}` };
    out.textContent = err.stack || err.message;
  }
})();
