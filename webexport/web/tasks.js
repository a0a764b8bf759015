// MediaPipe Tasks' ObjectDetector on the exported model, every file from this origin
// (@mediapipe/tasks-vision from npm, served under /vendor/tasks-vision/). window.tasksDetector
// .detect(img) gives [{box: [x0, y0, x1, y1] pixels, score, label}], as the Python backend
// `mediapipe` does; the tests compare the two.
import { FilesetResolver, ObjectDetector } from "./vendor/tasks-vision/vision_bundle.mjs";

const params = new URLSearchParams(location.search);
const file = params.get("model") || "model_int8.tflite";
const threshold = Number(params.get("threshold") || 0.5);
const status = document.getElementById("status");

function plain(result) {
  return result.detections.map((d) => {
    const b = d.boundingBox;
    const best = d.categories[0];
    return {
      box: [b.originX, b.originY, b.originX + b.width, b.originY + b.height],
      score: best.score,
      label: best.categoryName,
    };
  });
}

async function main() {
  const card = await (await fetch("./model/model_card.json")).json();
  const fileset = await FilesetResolver.forVisionTasks("./vendor/tasks-vision/wasm");
  const detector = await ObjectDetector.createFromOptions(fileset, {
    baseOptions: { modelAssetPath: `./model/${file}`, delegate: "CPU" },
    runningMode: "IMAGE",
    scoreThreshold: Math.max(threshold, card.postprocess.min_score),
    maxResults: card.postprocess.max_detections,
  });
  window.tasksDetector = {
    detect(image, scoreThreshold = threshold) {
      return plain(detector.detect(image)).filter((d) => d.score >= scoreThreshold);
    },
  };
  status.textContent = `${file}: ready`;
  document.body.dataset.ready = "1";
  document.getElementById("file").addEventListener("change", async (e) => {
    const img = new Image();
    img.src = URL.createObjectURL(e.target.files[0]);
    await img.decode();
    const view = document.getElementById("view");
    view.width = img.naturalWidth;
    view.height = img.naturalHeight;
    const ctx = view.getContext("2d");
    ctx.drawImage(img, 0, 0);
    ctx.strokeStyle = "#22c55e";
    ctx.lineWidth = 3;
    ctx.font = "16px system-ui";
    ctx.fillStyle = "#22c55e";
    const found = window.tasksDetector.detect(img);
    for (const d of found) {
      const [x0, y0, x1, y1] = d.box;
      ctx.strokeRect(x0, y0, x1 - x0, y1 - y0);
      ctx.fillText(`${d.label} ${d.score.toFixed(2)}`, x0 + 4, y0 + 18);
    }
    status.textContent = `${found.length} hand(s)`;
  });
}

main().catch((e) => {
  status.textContent = `cannot load ${file}: ${e.message || e}`;
  document.body.dataset.error = String(e.message || e);
});
