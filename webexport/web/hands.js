// hands.js: a tiny hand detection API over the exported TF.js model, in the spirit of
// handtrack.js.
//   const detector = await hands.load({model: "model/"});
//   const found = await detector.detect(videoOrImageOrCanvas); // [{bbox:[x,y,w,h], score, label}]
// The graph returns decoded boxes and per-class scores for every anchor; the non-maximum
// suppression runs here (as common/backends.py decode_raw does in Python), which also keeps
// the wasm backend away from the OD API NMS graph it mis-executes.
(function (global) {
  "use strict";
  const tf = global.tf;

  function iou(b, a, i, j) {
    const y0 = Math.max(b[a], b[i]), x0 = Math.max(b[a + 1], b[i + 1]);
    const y1 = Math.min(b[a + 2], b[i + 2]), x1 = Math.min(b[a + 3], b[i + 3]);
    const inter = Math.max(0, y1 - y0) * Math.max(0, x1 - x0);
    const areaA = (b[a + 2] - b[a]) * (b[a + 3] - b[a + 1]);
    const areaB = (b[i + 2] - b[i]) * (b[i + 3] - b[i + 1]);
    const union = areaA + areaB - inter;
    return union > 0 ? inter / union : 0;
  }

  // Greedy NMS per class over rows [ymin, xmin, ymax, xmax, score_1..score_K].
  function decode(raw, anchors, width, numClasses, opts) {
    const minScore = Math.max(opts.scoreThreshold, 0.05);
    const boxes = new Float32Array(anchors * 4);
    for (let a = 0; a < anchors; a++) {
      for (let k = 0; k < 4; k++) boxes[a * 4 + k] = raw[a * width + k];
    }
    let found = [];
    for (let c = 0; c < numClasses; c++) {
      const cand = [];
      for (let a = 0; a < anchors; a++) {
        const s = raw[a * width + 4 + c];
        if (s >= minScore) cand.push([s, a]);
      }
      cand.sort((p, q) => q[0] - p[0] || p[1] - q[1]);
      const kept = [];
      for (const [s, a] of cand) {
        if (kept.length >= opts.maxDetections) break;
        if (kept.every(([, k]) => iou(boxes, k * 4, a * 4) <= opts.iouThreshold)) kept.push([s, a]);
      }
      found = found.concat(kept.map(([s, a]) => ({ score: s, anchor: a, classId: c + 1 })));
    }
    found.sort((p, q) => q.score - p.score);
    return { boxes, found: found.slice(0, opts.maxDetections) };
  }

  class HandDetector {
    constructor(model, card, params) {
      this.model = model;
      this.card = card;
      this.labels = card.labels;
      this.params = Object.assign({
        scoreThreshold: 0.5,
        iouThreshold: card.postprocess.iou_threshold,
        maxDetections: card.postprocess.max_detections,
      }, params || {});
      this.fps = 0;
    }

    async detect(input, params) {
      const opts = Object.assign({}, this.params, params || {});
      const start = performance.now();
      const out = tf.tidy(() => this.model.execute(tf.browser.fromPixels(input).expandDims(0)));
      const raw = await out.data();
      const [, anchors, width] = out.shape;
      out.dispose();
      const h = input.videoHeight || input.naturalHeight || input.height;
      const w = input.videoWidth || input.naturalWidth || input.width;
      const { boxes, found } = decode(raw, anchors, width, width - 4, opts);
      const result = found.filter((d) => d.score >= opts.scoreThreshold).map((d) => {
        const b = d.anchor * 4;
        const ymin = Math.min(Math.max(boxes[b], 0), 1) * h;
        const xmin = Math.min(Math.max(boxes[b + 1], 0), 1) * w;
        const ymax = Math.min(Math.max(boxes[b + 2], 0), 1) * h;
        const xmax = Math.min(Math.max(boxes[b + 3], 0), 1) * w;
        return { bbox: [xmin, ymin, xmax - xmin, ymax - ymin], score: d.score,
                 classId: d.classId, label: this.labels[String(d.classId)] };
      });
      const ms = performance.now() - start;
      this.fps = this.fps ? 0.9 * this.fps + 0.1 * (1000 / ms) : 1000 / ms;
      return result;
    }

    dispose() { this.model.dispose(); }
  }

  async function load(options) {
    const o = Object.assign({ model: "model/", backend: "wasm", vendor: "vendor/" }, options || {});
    if (o.backend === "wasm") tf.wasm.setWasmPaths(new URL(o.vendor, location.href).href);
    await tf.setBackend(o.backend);
    await tf.ready();
    const base = new URL(o.model, location.href);
    const card = await (await fetch(new URL("model_card.json", base))).json();
    const model = await tf.loadGraphModel(new URL(o.variant || "tfjs/model.json", base).href);
    const detector = new HandDetector(model, card, o.params);
    const h = card.input_size[0], w = card.input_size[1];
    tf.dispose(model.execute(tf.zeros([1, h, w, 3], "int32")));  // warm up
    return detector;
  }

  global.hands = { load, HandDetector, decode };
})(typeof window !== "undefined" ? window : globalThis);
