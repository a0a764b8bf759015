// hands.js: hand detection in the page, in the spirit of handtrack.js.
//   const detector = await hands.load({model: "model/"});   // the fastest runtime that works
//   const found = await detector.detect(videoOrImageOrCanvas); // [{bbox:[x,y,w,h], score, label}]
//   detector.runtime  // "litert-threads" | "litert" | "tfjs": what runs, and detector.notes why
//
// Runtimes, all fed the same input: the source drawn at the model's size on a canvas.
// - "litert-threads": LiteRT.js (XNNPACK in wasm, threads), the int8 model in model/litert/.
//   Needs a cross-origin isolated page (COOP/COEP) and wasm relaxed SIMD.
// - "litert": the same, single-threaded build (pages that are not isolated).
// - "tfjs": TF.js wasm on model/tfjs/ (or options.variant), the fallback.
// LiteRT.js models return box encodings and scores for every anchor; the TF.js graph returns
// decoded boxes and scores. Either way the boxes and scores go through one NMS here (as
// common/backends.py decode_boxes + decode_raw do in Python).
(function (global) {
  "use strict";
  const RUNTIMES = ["litert-threads", "litert", "tfjs"];
  const CARD_SCHEMA = 2;  // the model card schema this file reads (common/card.py SCHEMA)

  // ------------------------------------------------------------------ decode + NMS

  // Faster R-CNN box coder: encodings (ty, tx, th, tw) on centre-size anchors (yc, xc, h, w)
  // -> normalised [ymin, xmin, ymax, xmax] rows.
  function decodeBoxes(enc, anchors, scales) {
    const [sy, sx, sh, sw] = scales;
    const n = anchors.length / 4, out = new Float32Array(n * 4);
    for (let a = 0, i = 0; a < n; a++, i += 4) {
      const yc = enc[i] / sy * anchors[i + 2] + anchors[i];
      const xc = enc[i + 1] / sx * anchors[i + 3] + anchors[i + 1];
      const h = Math.exp(enc[i + 2] / sh) * anchors[i + 2];
      const w = Math.exp(enc[i + 3] / sw) * anchors[i + 3];
      out[i] = yc - h / 2; out[i + 1] = xc - w / 2; out[i + 2] = yc + h / 2; out[i + 3] = xc + w / 2;
    }
    return out;
  }

  function iou(b, i, j) {
    const y0 = Math.max(b[i], b[j]), x0 = Math.max(b[i + 1], b[j + 1]);
    const y1 = Math.min(b[i + 2], b[j + 2]), x1 = Math.min(b[i + 3], b[j + 3]);
    const inter = Math.max(0, y1 - y0) * Math.max(0, x1 - x0);
    const union = (b[i + 2] - b[i]) * (b[i + 3] - b[i + 1]) +
                  (b[j + 2] - b[j]) * (b[j + 3] - b[j + 1]) - inter;
    return union > 0 ? inter / union : 0;
  }

  // Greedy NMS per class over the anchors scoring at least max(scoreThreshold, minScore).
  // boxes: [A*4] normalised yxyx; scores: [A*K]. Returns [{anchor, classId, score}], best first;
  // equal scores keep the lower anchor first (as common/decode.py nms).
  function nms(boxes, scores, numClasses, opts) {
    const anchors = scores.length / numClasses;
    const minScore = Math.max(opts.scoreThreshold, opts.minScore);
    let found = [];
    for (let c = 0; c < numClasses; c++) {
      const cand = [];
      for (let a = 0; a < anchors; a++) {
        const s = scores[a * numClasses + c];
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
    return found.slice(0, opts.maxDetections);
  }

  // Every anchor's decoded box and class scores -> detections in pixels of a width x height
  // image, clipped to it, at or above opts.scoreThreshold (common/decode.py postprocess).
  function postprocess(boxes, scores, numClasses, width, height, opts, labels) {
    const clip = (v) => Math.min(Math.max(v, 0), 1);
    return nms(boxes, scores, numClasses, opts)
      .filter((d) => d.score >= opts.scoreThreshold).map((d) => {
        const b = d.anchor * 4;
        const ymin = clip(boxes[b]) * height, xmin = clip(boxes[b + 1]) * width;
        const ymax = clip(boxes[b + 2]) * height, xmax = clip(boxes[b + 3]) * width;
        return { bbox: [xmin, ymin, xmax - xmin, ymax - ymin], score: d.score,
                 classId: d.classId, label: labels[String(d.classId)] };
      });
  }

  // A model card this file can read, or one clear error.
  function checkCard(card) {
    const schema = card.schema ?? 1;
    if (schema < CARD_SCHEMA) {
      throw new Error(`model card schema ${schema} is older than this hands.js reads ` +
                      `(${CARD_SCHEMA}); upgrade it: python -m common.card <model folder>`);
    }
    if (!Number.isInteger(schema) || schema > CARD_SCHEMA) {
      throw new Error(`model card schema ${schema} is newer than this hands.js reads ` +
                      `(${CARD_SCHEMA}); update hands.js or re-export the model`);
    }
    return card;
  }

  // ------------------------------------------------------------------ input

  // Draws any image source at the model's size; returns its RGBA pixels.
  class Resizer {
    constructor(width, height) {
      this.width = width; this.height = height;
      this.canvas = typeof OffscreenCanvas !== "undefined"
        ? new OffscreenCanvas(width, height)
        : Object.assign(document.createElement("canvas"), { width, height });
      this.ctx = this.canvas.getContext("2d", { willReadFrequently: true });
    }

    rgba(source) {
      this.ctx.drawImage(source, 0, 0, this.width, this.height);
      return this.ctx.getImageData(0, 0, this.width, this.height).data;
    }
  }

  function toRGB(rgba, Type) {
    const n = rgba.length / 4, out = new Type(n * 3);
    for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
      out[q] = rgba[p]; out[q + 1] = rgba[p + 1]; out[q + 2] = rgba[p + 2];
    }
    return out;
  }

  // ------------------------------------------------------------------ runtimes

  const litertModules = {};  // one LiteRT.js instance per build: it keeps a global runtime

  async function litertRuntime(base, card, o, threads) {
    if (threads && !global.crossOriginIsolated) {
      throw new Error("threads need a cross-origin isolated page (COOP/COEP headers)");
    }
    // the single-threaded build is a second module instance (another URL), so both can live in
    // one page (the bench's)
    const url = threads ? "@litertjs/core"
      : new URL(o.vendor + "litertjs/core/index.js?build=single", location.href).href;
    if (!litertModules[url]) {
      litertModules[url] = (async () => {
        const lr = await import(url);
        await lr.loadLiteRt(new URL(o.vendor + "litertjs/wasm/", location.href).href, { threads });
        return lr;
      })();
    }
    const lr = await litertModules[url];
    const precision = o.precision || "int8";
    const fetchBytes = async (name) => {
      const r = await fetch(new URL(`litert/${name}`, base));
      if (!r.ok) throw new Error(`model/litert/${name}: HTTP ${r.status}`);
      return new Uint8Array(await r.arrayBuffer());
    };
    const numThreads = threads ? Math.min(navigator.hardwareConcurrency || 2, 4) : 1;
    const model = await lr.loadAndCompile(await fetchBytes(`model_${precision}.tflite`),
                                          { accelerator: "wasm", cpuOptions: { numThreads } });
    const anchors = new Float32Array((await fetchBytes("anchors.bin")).buffer);
    const [input] = model.getInputDetails();
    const Type = input.dtype === "uint8" ? Uint8Array : Float32Array;
    const [h, w] = [input.shape[1], input.shape[2]];
    const scales = card.litert.box_coder_scales;
    return {
      name: threads ? "litert-threads" : "litert",
      detail: `LiteRT.js wasm, ${numThreads} thread${numThreads > 1 ? "s" : ""}, ${precision}`,
      width: w, height: h,
      async run(rgba) {
        const x = new lr.Tensor(toRGB(rgba, Type), [1, h, w, 3]);
        const out = await model.run({ [input.name]: x });
        x.delete();
        const enc = out.box_encodings.toTypedArray(), scores = out.scores.toTypedArray().slice();
        const boxes = decodeBoxes(enc, anchors, scales);
        for (const t of Object.values(out)) t.delete();
        return { boxes, scores };
      },
      dispose() { model.delete(); },
    };
  }

  async function tfjsRuntime(base, card, o) {
    const loadScript = (src) => new Promise((resolve, reject) => {
      const s = Object.assign(document.createElement("script"), { src, onload: resolve });
      s.onerror = () => reject(new Error(`cannot load ${src}`));
      document.head.appendChild(s);
    });
    if (!global.tf) await loadScript(o.vendor + "tf.min.js");
    if (!global.tf.wasm) await loadScript(o.vendor + "tf-backend-wasm.min.js");
    const tf = global.tf;
    tf.wasm.setWasmPaths(new URL(o.vendor, location.href).href);
    await tf.setBackend("wasm");
    await tf.ready();
    const model = await tf.loadGraphModel(new URL(o.variant || "tfjs/model.json", base).href);
    const [h, w] = card.input_size;
    return {
      name: "tfjs",
      detail: `TF.js ${tf.getBackend()}${global.crossOriginIsolated ? ", threads" : ""}`,
      width: w, height: h,
      async run(rgba) {
        const out = tf.tidy(() => {
          const x = tf.tensor(toRGB(rgba, Int32Array), [1, h, w, 3], "int32");
          return model.execute(x);
        });
        const raw = await out.data();
        out.dispose();
        const k = raw.length / (out.shape[1]) - 4, n = out.shape[1];
        const boxes = new Float32Array(n * 4), scores = new Float32Array(n * k);
        for (let a = 0; a < n; a++) {
          for (let j = 0; j < 4; j++) boxes[a * 4 + j] = raw[a * (4 + k) + j];
          for (let c = 0; c < k; c++) scores[a * k + c] = raw[a * (4 + k) + 4 + c];
        }
        return { boxes, scores };
      },
      dispose() { model.dispose(); },
    };
  }

  // ------------------------------------------------------------------ the detector

  class HandDetector {
    constructor(runtime, card, params, notes) {
      this.rt = runtime;
      this.runtime = runtime.name;
      this.detail = runtime.detail;
      this.notes = notes;  // why faster runtimes were passed over
      this.card = card;
      this.labels = card.labels;
      this.numClasses = Object.keys(card.labels).length;
      this.resizer = new Resizer(runtime.width, runtime.height);
      this.params = Object.assign({
        scoreThreshold: 0.5,
        minScore: card.postprocess.min_score,
        iouThreshold: card.postprocess.iou_threshold,
        maxDetections: card.postprocess.max_detections,
      }, params || {});
      this.fps = 0;
    }

    async detect(input, params) {
      const opts = Object.assign({}, this.params, params || {});
      const start = performance.now();
      const { boxes, scores } = await this.rt.run(this.resizer.rgba(input));
      const h = input.videoHeight || input.naturalHeight || input.height;
      const w = input.videoWidth || input.naturalWidth || input.width;
      const result = postprocess(boxes, scores, this.numClasses, w, h, opts, this.labels);
      const ms = performance.now() - start;
      this.fps = this.fps ? 0.9 * this.fps + 0.1 * (1000 / ms) : 1000 / ms;
      return result;
    }

    dispose() { this.rt.dispose(); }
  }

  // options: model (folder URL), runtime ("auto" or one of RUNTIMES), precision ("int8" |
  // "fp32", LiteRT.js), variant (TF.js model.json path under the model folder), vendor, params.
  async function load(options) {
    const o = Object.assign({ model: "model/", runtime: "auto", vendor: "vendor/" }, options || {});
    const base = new URL(o.model, location.href);
    const card = checkCard(await (await fetch(new URL("model_card.json", base))).json());
    let order;
    if (o.runtime === "auto") {
      order = card.litert ? RUNTIMES.slice(global.crossOriginIsolated ? 0 : 1) : ["tfjs"];
    } else if (RUNTIMES.includes(o.runtime)) {
      order = [o.runtime];
    } else {
      throw new Error(`unknown runtime ${o.runtime}; choose auto or one of ${RUNTIMES}`);
    }
    const notes = [];
    if (o.runtime === "auto" && !global.crossOriginIsolated) {
      notes.push("litert-threads: page not cross-origin isolated");
    }
    for (const name of order) {
      try {
        const rt = name === "tfjs" ? await tfjsRuntime(base, card, o)
                                   : await litertRuntime(base, card, o, name === "litert-threads");
        const detector = new HandDetector(rt, card, o.params, notes);
        const blank = new Resizer(rt.width, rt.height).canvas;
        await detector.detect(blank);  // warm up
        detector.fps = 0;
        return detector;
      } catch (err) {
        notes.push(`${name}: ${err.message}`);
        if (order.length === 1) throw err;
      }
    }
    throw new Error(`no runtime could run the model (${notes.join("; ")})`);
  }

  global.hands = { load, HandDetector, RUNTIMES, CARD_SCHEMA, decodeBoxes, nms, postprocess,
                   checkCard };
})(typeof window !== "undefined" ? window : globalThis);
