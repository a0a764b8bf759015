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
// handspot/decode.py does in Python).
(function (global) {
  "use strict";
  const RUNTIMES = ["litert-threads", "litert", "tfjs"];
  const CARD_SCHEMA = 2;  // the model card schema this file reads (handspot/card.py SCHEMA)

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
  // equal scores keep the lower anchor first (as handspot/decode.py nms).
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
  // image, clipped to it, at or above opts.scoreThreshold (handspot/decode.py postprocess).
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
                      `(${CARD_SCHEMA}); upgrade it: python -m handspot.card <model folder>`);
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

  // ------------------------------------------------------------------ the landmark stage
  // MediaPipe's hand landmark model on each box: 21 keypoints, hand presence, handedness; the
  // same geometry and fusion as handspot/landmarks.py (tested against it in Node).

  const CROP = 224;
  const Z_SCALE = 0.4;  // MediaPipe's normalize_z for hands
  const PALM = [0, 1, 2, 3, 5, 6, 9, 10, 13, 14, 17, 18];
  // handspot/landmarks.py LandmarkOptions' defaults (the measured best); the model: lite_int8,
  // which LiteRT.js runs faster than lite in wasm (python -m webexport.bench)
  const LANDMARKS = {
    model: "lite_int8", passes: 2, turn: 15, boxScale: 1.5, presence: 0.5, floor: 0.3, box: "blend",
    pad: 0.15, blend: 0.3, replaceIou: 0.3, drop: false, nmsIou: 0.5, minScore: 0.1,
    mirrored: false,
  };

  // A square crop: centre and side in pixels, and the hand's up direction (radians, 0: fingers
  // up, positive: turned clockwise), upright around a box [x, y, w, h].
  function roiFromBox(bbox, scale) {
    const [x, y, w, h] = bbox;
    return { cx: x + w / 2, cy: y + h / 2, size: scale * Math.max(w, h, 1), angle: 0 };
  }

  // MediaPipe's next crop from 21 keypoints: turned by the wrist -> middle-finger direction,
  // around the palm, scale x its longer side, moved shift of its height towards the fingers.
  function roiFromKeypoints(points, scale = 2.0, shift = -0.1) {
    const mid = (a, b) => [(a[0] + b[0]) / 2, (a[1] + b[1]) / 2];
    const tip = mid(mid(points[5], points[13]), points[9]);
    const angle = Math.atan2(tip[0] - points[0][0], -(tip[1] - points[0][1]));
    const up = [Math.sin(angle), -Math.cos(angle)], right = [-up[1], up[0]];
    let u0 = Infinity, u1 = -Infinity, v0 = Infinity, v1 = -Infinity;
    for (const i of PALM) {
      const [x, y] = points[i];
      const u = x * right[0] + y * right[1], v = -(x * up[0] + y * up[1]);
      u0 = Math.min(u0, u); u1 = Math.max(u1, u); v0 = Math.min(v0, v); v1 = Math.max(v1, v);
    }
    const um = (u0 + u1) / 2, vm = (v0 + v1) / 2, height = v1 - v0;
    const cx = right[0] * um - up[0] * vm + up[0] * -shift * height;
    const cy = right[1] * um - up[1] * vm + up[1] * -shift * height;
    return { cx, cy, size: scale * Math.max(u1 - u0, height, 1), angle };
  }

  // The affine map from crop pixels to image pixels: [a, b, c, d, e, f] with
  // x = a u + c v + e, y = b u + d v + f (a canvas transform's order).
  function cropToImage(roi) {
    const s = roi.size / CROP, c = Math.cos(roi.angle), n = Math.sin(roi.angle);
    const a = c * s, b = n * s, cc = -n * s, d = c * s;
    return [a, b, cc, d, roi.cx - (a + cc) * CROP / 2, roi.cy - (b + d) * CROP / 2];
  }

  function invert([a, b, c, d, e, f]) {
    const det = a * d - b * c;
    return [d / det, -b / det, -c / det, a / det, (c * f - d * e) / det, (b * e - a * f) / det];
  }

  // The model's raw handedness is P("Left") for a mirrored (selfie) image; the person's own
  // hand otherwise swaps it.
  function handedness(left, mirrored) {
    const l = mirrored ? left : 1 - left;
    return l >= 0.5 ? ["left", l] : ["right", 1 - l];
  }

  // ------------------------------------------------------------------ left/right
  // handspot/handedness.py: along a track the label comes from the track's faded,
  // presence-weighted evidence and turns only past a margin; the unsure hand of one person's
  // pair (two hands of about one size, one label) takes the other side.
  const HANDEDNESS = { halfLife: 8, margin: 3, unsure: 0.8, sure: 0.9, pairSize: 1.6 };

  const pLeft = (left, mirrored) => (mirrored ? left : 1 - left);
  const otherSide = (label) => (label === "left" ? "right" : "left");

  function logit(p) {
    const q = Math.min(Math.max(p, 1e-3), 1 - 1e-3);
    return Math.log(q / (1 - q));
  }

  class Vote {
    constructor(opts) {
      this.o = Object.assign({}, HANDEDNESS, opts || {});
      this.decay = 0.5 ** (1 / this.o.halfLife);
      this.evidence = 0; this.weight = 0; this.label = "";
    }

    turn() { this.label = otherSide(this.label); }

    add(p, presence) {
      this.evidence = this.decay * this.evidence + presence * logit(p);
      this.weight = this.decay * this.weight + presence;
      const lead = this.label === "right" ? this.evidence : -this.evidence;
      if (!this.label) this.label = this.evidence >= 0 ? "left" : "right";
      else if (lead > this.o.margin) this.turn();
      return this.label;
    }

    get probability() {
      const mean = this.weight > 0 ? this.evidence / this.weight : 0;
      const p = 1 / (1 + Math.exp(-mean));
      return this.label === "left" ? p : 1 - p;
    }
  }

  // The labels a track gets from P(left) and presence frame by frame (for tests against Python).
  function steadyLabels(pLefts, presences, opts) {
    const vote = new Vote(opts);
    return Array.from(pLefts, (p, i) => vote.add(p, presences[i]));
  }

  // The pair rule: of exactly two hands (bboxes [x, y, w, h]) of sizes within pairSize, one
  // label for both, the index of the one below `unsure` while the other is at least `sure`;
  // -1 where the rule does not apply.
  function unsureOfPair(labels, scores, bboxes, opts) {
    const o = Object.assign({}, HANDEDNESS, opts || {});
    if (labels.length !== 2 || labels[0] !== labels[1] || !labels[0]) return -1;
    const sides = bboxes.map(([, , w, h]) => Math.max(w, h, 1));
    if (Math.max(...sides) / Math.min(...sides) > o.pairSize) return -1;
    const [weak, strong] = scores[0] < scores[1] ? [0, 1] : [1, 0];
    return scores[weak] < o.unsure && scores[strong] >= o.sure ? weak : -1;
  }

  // Rows (hands.js objects with handedness) with the pair rule applied.
  function withPairRule(rows, opts) {
    const weak = unsureOfPair(rows.map((d) => d.handedness), rows.map((d) => d.handednessScore),
                              rows.map((d) => d.bbox), opts);
    if (weak >= 0) {
      rows[weak].handedness = otherSide(rows[weak].handedness);
      rows[weak].handednessScore = 1 - rows[weak].handednessScore;
    }
    return rows;
  }

  function keypointBox(points, pad) {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const [x, y] of points) {
      x0 = Math.min(x0, x); y0 = Math.min(y0, y); x1 = Math.max(x1, x); y1 = Math.max(y1, y);
    }
    const mx = (x1 - x0) * pad, my = (y1 - y0) * pad;
    return [x0 - mx, y0 - my, x1 + mx, y1 + my];
  }

  // Detections (hands.js objects) with what the stage found on each (hands[i]: {keypoints,
  // presence, left}), as handspot/landmarks.py fuse: score x (floor + (1 - floor) x presence);
  // where a hand shows, the box moved towards the keypoints' box (or replaced by it where the
  // two hardly overlap); boxes showing no hand dropped only with drop; then one box a hand.
  function fuse(found, hands, opts, width, height) {
    const o = Object.assign({}, LANDMARKS, opts || {});
    const clip = (v, hi) => Math.min(Math.max(v, 0), hi);
    const rows = [];
    found.forEach((d, i) => {
      const hand = hands[i], present = hand.presence >= o.presence;
      if (!present && o.drop) return;
      let [x0, y0, x1, y1] = [d.bbox[0], d.bbox[1], d.bbox[0] + d.bbox[2], d.bbox[1] + d.bbox[3]];
      if (present && o.box !== "detector") {
        const kp = keypointBox(hand.keypoints, o.pad);
        const b = o.box === "keypoints" || boxIou([x0, y0, x1, y1], kp) < o.replaceIou ? 1 : o.blend;
        [x0, y0, x1, y1] = [x0, y0, x1, y1].map((v, k) => (1 - b) * v + b * kp[k]);
      }
      [x0, x1] = [clip(x0, width), clip(x1, width)];
      [y0, y1] = [clip(y0, height), clip(y1, height)];
      const [side, sideScore] = handedness(hand.left, o.mirrored);
      const row = { bbox: [x0, y0, x1 - x0, y1 - y0],
                    score: d.score * (o.floor + (1 - o.floor) * hand.presence),
                    classId: d.classId, label: d.label, keypoints: hand.keypoints,
                    handedness: side, handednessScore: sideScore, presence: hand.presence };
      if ("trackId" in d) row.trackId = d.trackId;
      rows.push(row);
    });
    const boxes = new Float32Array(rows.length * 4), scores = new Float32Array(rows.length);
    rows.forEach((d, i) => {
      const [x, y, w, h] = d.bbox;
      boxes.set([y, x, y + h, x + w], i * 4);
      scores[i] = d.score;
    });
    const keep = nms(boxes, scores, 1, { scoreThreshold: -1, minScore: -1,
                                         iouThreshold: o.nmsIou, maxDetections: rows.length });
    return keep.map((k) => rows[k.anchor]);
  }

  // ------------------------------------------------------------------ runtimes

  const litertModules = {};  // one LiteRT.js instance per build: it keeps a global runtime

  // LiteRT.js, threaded or not. The single-threaded build is a second module instance
  // (another URL), so both can live in one page (the bench's).
  async function litertModule(o, threads) {
    if (threads && !global.crossOriginIsolated) {
      throw new Error("threads need a cross-origin isolated page (COOP/COEP headers)");
    }
    const url = threads ? "@litertjs/core"
      : new URL(o.vendor + "litertjs/core/index.js?build=single", location.href).href;
    if (!litertModules[url]) {
      litertModules[url] = (async () => {
        const lr = await import(url);
        await lr.loadLiteRt(new URL(o.vendor + "litertjs/wasm/", location.href).href, { threads });
        return lr;
      })();
    }
    return litertModules[url];
  }

  async function litertRuntime(base, card, o, threads) {
    const lr = await litertModule(o, threads);
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

  // The landmark model on LiteRT.js (the same file Python runs, from this page's origin):
  // run(source, roi) -> {keypoints: [[x, y, z] x 21] in the source's pixels, presence, left}.
  async function landmarkRuntime(o, lr, numThreads) {
    const name = `hand_landmark_${o.landmarks.model}.tflite`;
    const r = await fetch(new URL(`${o.vendor}mediapipe/${name}`, location.href));
    if (!r.ok) throw new Error(`landmark model ${name}: HTTP ${r.status}`);
    const model = await lr.loadAndCompile(new Uint8Array(await r.arrayBuffer()),
                                          { accelerator: "wasm", cpuOptions: { numThreads } });
    const [input] = model.getInputDetails();
    const canvas = typeof OffscreenCanvas !== "undefined" ? new OffscreenCanvas(CROP, CROP)
      : Object.assign(document.createElement("canvas"), { width: CROP, height: CROP });
    const ctx = canvas.getContext("2d", { willReadFrequently: true });
    const pixels = new Float32Array(CROP * CROP * 3);
    const run = async (source, roi) => {
      ctx.setTransform(1, 0, 0, 1, 0, 0);
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, CROP, CROP);
      ctx.setTransform(...invert(cropToImage(roi)));
      ctx.drawImage(source, 0, 0);
      const rgba = ctx.getImageData(0, 0, CROP, CROP).data;
      for (let p = 0, q = 0; p < rgba.length; p += 4, q += 3) {
        pixels[q] = rgba[p] / 255; pixels[q + 1] = rgba[p + 1] / 255; pixels[q + 2] = rgba[p + 2] / 255;
      }
      const x = new lr.Tensor(pixels, [1, CROP, CROP, 3]);
      const out = await model.run({ [input.name]: x });
      x.delete();
      const raw = out.Identity.toTypedArray(), presence = out.Identity_1.toTypedArray()[0];
      const left = out.Identity_2.toTypedArray()[0];
      for (const t of Object.values(out)) t.delete();
      const [a, b, c, d, e, f] = cropToImage(roi), s = roi.size / CROP;
      const keypoints = [];
      for (let i = 0; i < 63; i += 3) {
        const u = raw[i], v = raw[i + 1];
        keypoints.push([a * u + c * v + e, b * u + d * v + f, raw[i + 2] * s / Z_SCALE]);
      }
      return { keypoints, presence, left, roi };
    };
    return {
      run,
      // one hand from a box: the upright crop, then (passes 2) the crop its keypoints give,
      // where the first pass finds the hand turned at least opts.turn degrees
      async refine(source, bbox, opts) {
        let hand = await run(source, roiFromBox(bbox, opts.boxScale));
        if (opts.passes === 2 && hand.presence >= opts.presence) {
          const roi = roiFromKeypoints(hand.keypoints);
          if (Math.abs(roi.angle) * 180 / Math.PI >= opts.turn) hand = await run(source, roi);
        }
        return hand;
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
    constructor(runtime, card, params, notes, landmarker, landmarks) {
      this.rt = runtime;
      this.landmarker = landmarker || null;  // the landmark stage, when loaded
      this.landmarks = Object.assign({}, LANDMARKS, landmarks || {});
      this.tracks = [];
      this.gone = [];  // hands lost lately
      this.frame = 0;
      this.next = 0;  // the frame the detector runs on next, while tracking
      this.every = 5;
      this.nextId = 1;
      this.handedness = Object.assign({}, HANDEDNESS);
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

    // [{bbox, score, classId, label}] and, with the landmark stage, keypoints, handedness,
    // handednessScore and presence; params.track (video frames in order): trackId too.
    async detect(input, params) {
      const opts = Object.assign({}, this.params, params || {});
      const start = performance.now();
      const stage = this.landmarker && opts.landmarks !== false;
      let result;
      if (stage && opts.track) {
        result = await this.follow(input, opts);
      } else if (stage) {
        const w = width(input), h = height(input);
        const found = await this.worthRefining(input, opts);
        const hands = [];
        for (const d of found) hands.push(await this.landmarker.refine(input, d.bbox, this.landmarks));
        const fused = fuse(found, hands, this.landmarks, w, h)
          .filter((d) => d.score >= opts.scoreThreshold);
        result = withPairRule(best(fused, opts.maxHands), this.handedness);
      } else {
        result = await this.boxes(input, opts, opts.scoreThreshold);
      }
      const ms = performance.now() - start;
      this.fps = this.fps ? 0.9 * this.fps + 0.1 * (1000 / ms) : 1000 / ms;
      return result;
    }

    // The detector alone, at or above threshold.
    async boxes(input, opts, threshold) {
      const { boxes, scores } = await this.rt.run(this.resizer.rgba(input));
      return postprocess(boxes, scores, this.numClasses, width(input), height(input),
                         Object.assign({}, opts, { scoreThreshold: threshold }), this.labels);
    }

    // The boxes the stage runs on: at least minScore and the threshold (fusion never raises a
    // score; handspot/landmarks.py LandmarkOptions.worth_refining).
    async worthRefining(input, opts) {
      return this.boxes(input, opts, Math.max(this.landmarks.minScore, opts.scoreThreshold));
    }

    // Video: each hand's crop follows its keypoints (handspot/tracking.py HandTracker); the
    // detector runs every detectEvery frames (an interval that doubles up to 10 while every
    // hand holds), not while maxHands hands hold, and at once when a hand is lost or none is
    // seen; left/right from each track's evidence, and the pair rule.
    async follow(input, opts) {
      const lm = this.landmarks, base = opts.detectEvery || 5, max = opts.maxHands || 4;
      let lost = false;
      const kept = [], gone = [];
      for (const t of this.tracks) {  // one model: its runs one after the other
        const hand = await this.landmarker.run(input, t.roi);
        if (hand.presence >= lm.presence) {
          const roi = roiFromKeypoints(hand.keypoints);  // its centre moved as the hand did
          t.motion = [0.5 * t.motion[0] + 0.5 * (roi.cx - t.roi.cx),
                      0.5 * t.motion[1] + 0.5 * (roi.cy - t.roi.cy)];
          t.hand = hand; t.roi = roi; kept.push(t);
          t.vote.add(pLeft(hand.left, lm.mirrored), hand.presence);
        } else {  // kept keepLost frames, to give its id back (handspot/tracking.py _Gone)
          lost = true;
          gone.push({ id: t.id, vote: t.vote, box: keypointBox(t.hand.keypoints, lm.pad),
                      motion: t.motion, frame: this.frame });
        }
      }
      if (gone.length && !kept.length) this.gone = [];  // every hand gone at once: maybe a cut
      else this.gone.push(...gone);
      this.gone = this.gone.filter((g) => this.frame - g.frame < (opts.keepLost ?? 30));
      this.tracks = dedupe(kept, lm.pad);
      const due = this.frame >= this.next && this.tracks.length < max;
      if (due) this.next = this.frame + this.every;
      if (due || lost || !this.tracks.length) {
        const added = await this.addNew(input, await this.worthRefining(input, opts), opts);
        const steady = !lost && !added && this.tracks.length;
        this.every = steady ? Math.min(2 * this.every, Math.max(base, 10)) : base;
      }
      this.frame += 1;
      const rows = this.tracks.map((t) => {
        const [x0, y0, x1, y1] = detectorBox(t);
        return { bbox: [x0, y0, x1 - x0, y1 - y0], score: t.score, classId: t.classId,
                 label: t.label, trackId: t.id };
      });
      const found = fuse(rows, this.tracks.map((t) => t.hand),
                         Object.assign({}, lm, { drop: false, nmsIou: 1 }), width(input),
                         height(input)).filter((d) => d.score >= opts.scoreThreshold);
      const votes = found.map((d) => this.tracks.find((t) => t.id === d.trackId).vote);
      found.forEach((d, i) => {
        d.handedness = votes[i].label; d.handednessScore = votes[i].probability;
      });
      const weak = unsureOfPair(found.map((d) => d.handedness),
                                found.map((d) => d.handednessScore), found.map((d) => d.bbox),
                                this.handedness);
      if (weak >= 0) {  // kept on the track until its evidence turns it back
        votes[weak].turn();
        found[weak].handedness = votes[weak].label;
        found[weak].handednessScore = 1 - found[weak].handednessScore;
      }
      return found;
    }

    // New tracks for detections no followed hand covers; a followed hand takes the score of
    // the best detection on it.
    async addNew(input, found, opts) {
      const lm = this.landmarks, max = opts.maxHands || 4, newIou = 0.3;
      const before = this.tracks.length;
      const boxes = () => this.tracks.map((t) => keypointBox(t.hand.keypoints, lm.pad));
      const rescored = new Set();
      for (const d of found) {  // best first
        const [x, y, w, h] = d.bbox;
        const ious = boxes().map((b) => boxIou([x, y, x + w, y + h], b));
        const best = ious.length ? ious.indexOf(Math.max(...ious)) : -1;
        if (best >= 0 && ious[best] >= newIou) {
          if (!rescored.has(best)) { seen(this.tracks[best], d); rescored.add(best); }
          continue;
        }
        if (this.tracks.length >= max) break;
        const hand = await this.landmarker.refine(input, d.bbox, lm);
        if (hand.presence < lm.presence) continue;
        const box = keypointBox(hand.keypoints, lm.pad);
        if (boxes().some((b) => boxIou(box, b) >= newIou)) continue;
        const left = pLeft(hand.left, lm.mirrored);
        const again = this.foundAgain(box, handedness(hand.left, lm.mirrored)[0]);
        const track = { id: again ? again.id : this.nextId++, hand, classId: d.classId,
                        label: d.label, roi: roiFromKeypoints(hand.keypoints), motion: [0, 0],
                        vote: again ? again.vote : new Vote(this.handedness) };
        track.vote.add(left, hand.presence);
        seen(track, d);
        this.tracks.push(track);
      }
      return this.tracks.length - before;
    }

    // The lost hand of the same side nearest where it was heading, if a new hand's box (xyxy)
    // is within 0.75 of its size of that place (handspot/tracking.py
    // HandTracker._found_again); it leaves the lost ones.
    foundAgain(box, side) {
      let best = -1, nearest = Infinity;
      this.gone.forEach((g, i) => {
        const d = goneDistance(g, box, this.frame);
        if (g.vote.label === side && d <= NEAR && d < nearest) { best = i; nearest = d; }
      });
      return best >= 0 ? this.gone.splice(best, 1)[0] : null;
    }

    reset() {
      this.tracks = []; this.gone = []; this.frame = 0; this.next = 0; this.every = 5;
    }

    dispose() {
      this.rt.dispose();
      if (this.landmarker) this.landmarker.dispose();
    }
  }

  const NEAR = 0.75;

  // How far a box's centre is from where a lost hand would be on frame `frame` had it kept
  // moving, in its box's longer sides (handspot/tracking.py _Gone.distance).
  function goneDistance(g, box, frame) {
    const [x0, y0, x1, y1] = g.box, steps = frame - g.frame;
    const ax = (x0 + x1) / 2 + g.motion[0] * steps, ay = (y0 + y1) / 2 + g.motion[1] * steps;
    const dx = (box[0] + box[2]) / 2 - ax, dy = (box[1] + box[3]) / 2 - ay;
    return Math.hypot(dx, dy) / Math.max(x1 - x0, y1 - y0, 1);
  }

  // The n highest-scoring detections, in their order (all for no n; Detections.best).
  function best(found, n) {
    if (!n || found.length <= n) return found;
    const order = found.map((d, i) => i).sort((a, b) => found[b].score - found[a].score || a - b);
    const kept = new Set(order.slice(0, n));
    return found.filter((d, i) => kept.has(i));
  }

  const width = (input) => input.videoWidth || input.naturalWidth || input.width;
  const height = (input) => input.videoHeight || input.naturalHeight || input.height;

  function boxIou(a, b) {  // xyxy
    const iw = Math.max(0, Math.min(a[2], b[2]) - Math.max(a[0], b[0]));
    const ih = Math.max(0, Math.min(a[3], b[3]) - Math.max(a[1], b[1]));
    const union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - iw * ih;
    return union > 0 ? iw * ih / union : 0;
  }

  // The detector saw a followed hand: its score, and its box's margins around the keypoints
  // (handspot/tracking.py _Track.seen), which keep the box detector-shaped between detections.
  function seen(track, d) {
    const kp = keypointBox(track.hand.keypoints, 0);
    const w = Math.max(kp[2] - kp[0], 1), h = Math.max(kp[3] - kp[1], 1);
    const [x, y, bw, bh] = d.bbox;
    track.score = d.score;
    track.margins = [(x - kp[0]) / w, (y - kp[1]) / h, (x + bw - kp[2]) / w, (y + bh - kp[3]) / h];
  }

  function detectorBox(track) {
    const kp = keypointBox(track.hand.keypoints, 0), m = track.margins;
    const w = Math.max(kp[2] - kp[0], 1), h = Math.max(kp[3] - kp[1], 1);
    return [kp[0] + m[0] * w, kp[1] + m[1] * h, kp[2] + m[2] * w, kp[3] + m[3] * h];
  }

  // Two tracks that converged on one hand: the older one stays.
  function dedupe(tracks, pad) {
    const kept = [];
    for (const t of [...tracks].sort((p, q) => p.id - q.id)) {
      const box = keypointBox(t.hand.keypoints, pad);
      if (kept.every((k) => boxIou(box, keypointBox(k.hand.keypoints, pad)) < 0.5)) kept.push(t);
    }
    return kept;
  }

  // options: model (folder URL), runtime ("auto" or one of RUNTIMES), precision ("int8" |
  // "fp32", LiteRT.js), variant (TF.js model.json path under the model folder), vendor, params;
  // landmarks (true, "auto": on for a one-class hand model, or options as handspot/landmarks.py's:
  // {model: "lite_int8" | "lite" | "full", mirrored, ...}) loads the landmark stage on LiteRT.js.
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
    // "auto": the stage for a hand detector (its one class is hand), not for other models
    const handsOnly = Object.values(card.labels).join() === "hand";
    let wanted = o.landmarks;
    if (wanted === "auto") {
      wanted = handsOnly;
      if (!handsOnly) notes.push("landmarks: off, the model's classes are not just hand");
    }
    const landmarks = wanted ? Object.assign({}, LANDMARKS, wanted === true ? {} : wanted) : null;
    for (const name of order) {
      try {
        const rt = name === "tfjs" ? await tfjsRuntime(base, card, o)
                                   : await litertRuntime(base, card, o, name === "litert-threads");
        let landmarker = null;
        if (landmarks) {  // LiteRT.js even beside TF.js; without it, boxes only (and a note)
          try {
            const threads = name === "litert-threads";
            const lr = await litertModule(o, threads);
            const numThreads = threads ? Math.min(navigator.hardwareConcurrency || 2, 4) : 1;
            landmarker = await landmarkRuntime(Object.assign({}, o, { landmarks }), lr, numThreads);
          } catch (err) {
            notes.push(`landmarks: ${err.message}`);
          }
        }
        const detector = new HandDetector(rt, card, o.params, notes, landmarker, landmarks);
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

  global.hands = { load, HandDetector, RUNTIMES, CARD_SCHEMA, LANDMARKS, decodeBoxes, nms,
                   postprocess, checkCard, roiFromBox, roiFromKeypoints, cropToImage, invert,
                   handedness, keypointBox, fuse, steadyLabels, unsureOfPair, best,
                   goneDistance };
})(typeof window !== "undefined" ? window : globalThis);
