// ms/frame of our model (hands.js) and of handtrack.js's ssd320fpnlite, same page, same image,
// same backend. handtrack.js's per-frame work is reproduced: graph to its two raw outputs,
// read back, per-anchor max score, NMS.
(async function () {
  "use strict";
  const p = new URLSearchParams(location.search);
  const n = +(p.get("n") || 20);
  const backend = p.get("backend") || "wasm";
  const out = document.getElementById("out");
  try {
    const img = new Image();
    img.src = p.get("image");
    await img.decode();
    const ours = await hands.load({ model: "model/", backend });
    const timeIt = async (fn) => {
      for (let i = 0; i < 3; i++) await fn();
      const t = performance.now();
      for (let i = 0; i < n; i++) await fn();
      return (performance.now() - t) / n;
    };
    const result = { backend: tf.getBackend(), threads: self.crossOriginIsolated, n };
    result.ours = await timeIt(() => ours.detect(img));
    if (p.get("htj")) {
      const htj = await tf.loadGraphModel(p.get("htj"));
      const nodes = ["StatefulPartitionedCall/Postprocessor/Slice",
                     "StatefulPartitionedCall/Postprocessor/ExpandDims_1"];
      result.handtrack = await timeIt(async () => {
        const x = tf.tidy(() => tf.browser.fromPixels(img).expandDims(0).toInt());
        const [scores, boxes] = await htj.executeAsync(x, nodes);
        const s = await scores.data();
        const b = await boxes.data();
        const [, anchors, classes] = scores.shape;
        const best = new Float32Array(anchors);
        for (let a = 0; a < anchors; a++) {
          let m = 0;
          for (let c = 0; c < classes; c++) m = Math.max(m, s[a * classes + c]);
          best[a] = m;
        }
        const keep = await tf.image.nonMaxSuppressionAsync(
          tf.tensor2d(b, [anchors, 4]), best, 20, 0.2, 0.6);
        await keep.data();
        tf.dispose([x, scores, boxes, keep]);
      });
    }
    window.benchResult = result;
    out.textContent = JSON.stringify(result, null, 2);
  } catch (err) {
    window.benchResult = { error: err.message };
    out.textContent = err.message;
  }
})();
