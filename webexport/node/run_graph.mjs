// Run a TF.js graph model in Node on raw images, for parity tests and benchmarks.
//   node run_graph.mjs request.json
// request: {model: dir, backend: "cpu"|"wasm", outputs: [names] | null,
//           inputs: [{data: file of raw bytes, shape: [...], dtype: "int32"|"float32"}],
//           warmup: n, repeat: n, out: results.json}
// results: {backend, outputs: [[{name, shape, data: base64 float32}]], ms: [per input]}
import fs from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import * as tf from "@tensorflow/tfjs";

const here = path.dirname(fileURLToPath(import.meta.url));

function fileHandler(dir) {
  return {
    load: async () => {
      const json = JSON.parse(fs.readFileSync(path.join(dir, "model.json"), "utf8"));
      const weightSpecs = [];
      const buffers = [];
      for (const group of json.weightsManifest) {
        weightSpecs.push(...group.weights);
        for (const p of group.paths) buffers.push(fs.readFileSync(path.join(dir, p)));
      }
      const all = Buffer.concat(buffers);
      return {
        modelTopology: json.modelTopology,
        weightSpecs,
        weightData: all.buffer.slice(all.byteOffset, all.byteOffset + all.byteLength),
        format: json.format,
        generatedBy: json.generatedBy,
        convertedBy: json.convertedBy,
        signature: json.signature,
        userDefinedMetadata: json.userDefinedMetadata,
        modelInitializer: json.modelInitializer,
      };
    },
  };
}

async function setBackend(name) {
  if (name === "wasm") {
    const wasm = await import("@tensorflow/tfjs-backend-wasm");
    const dist = path.join(here, "..", "node_modules", "@tensorflow", "tfjs-backend-wasm", "dist");
    wasm.setWasmPaths(dist + path.sep);
  }
  if (!(await tf.setBackend(name))) throw new Error(`backend ${name} unavailable`);
  await tf.ready();
}

function toTensor(input) {
  const bytes = fs.readFileSync(input.data);
  const dtype = input.dtype || "int32";
  const values = dtype === "float32"
    ? new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
    : Int32Array.from(bytes);
  return tf.tensor(values, input.shape, dtype);
}

async function main() {
  const request = JSON.parse(fs.readFileSync(process.argv[2], "utf8"));
  await setBackend(request.backend || "cpu");
  const model = await tf.loadGraphModel(fileHandler(request.model));
  const names = request.outputs && request.outputs.length ? request.outputs : model.outputNodes;
  const results = [];
  const ms = [];
  for (const input of request.inputs) {
    const x = toTensor(input);
    for (let i = 0; i < (request.warmup || 0); i++) tf.dispose(await model.executeAsync(x, names));
    let outs;
    const repeat = Math.max(1, request.repeat || 1);
    const start = performance.now();
    for (let i = 0; i < repeat; i++) {
      if (outs) tf.dispose(outs);
      outs = await model.executeAsync(x, names);
      outs = Array.isArray(outs) ? outs : [outs];
      await Promise.all(outs.map((t) => t.data()));
    }
    ms.push((performance.now() - start) / repeat);
    const row = [];
    for (let i = 0; i < outs.length; i++) {
      const data = await outs[i].data();
      const f32 = Float32Array.from(data);
      row.push({ name: names[i], shape: outs[i].shape,
                 data: Buffer.from(f32.buffer).toString("base64") });
    }
    tf.dispose([x, ...outs]);
    results.push(row);
  }
  fs.writeFileSync(request.out, JSON.stringify({ backend: tf.getBackend(), outputs: results, ms }));
}

main().catch((err) => {
  console.error(`error: ${err.message}`);
  process.exit(2);
});
