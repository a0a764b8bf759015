// Run hands.js's pure functions (box decoding, NMS, post-processing, the card check) in Node on
// JSON input, for the tests that hold Python and JS to the same results.
//   node hands_core.mjs < calls.json      calls: [{fn, args}]  ->  [{result} | {error}]
import fs from "node:fs";
import path from "node:path";
import vm from "node:vm";
import { fileURLToPath } from "node:url";

const here = path.dirname(fileURLToPath(import.meta.url));
vm.runInThisContext(fs.readFileSync(path.join(here, "..", "web", "hands.js"), "utf8"));
const { hands } = globalThis;

const typed = (v) => (Array.isArray(v) && v.every((x) => typeof x === "number")
  ? Float32Array.from(v) : v);
const plain = (v) => (ArrayBuffer.isView(v) ? Array.from(v) : v);

const calls = JSON.parse(fs.readFileSync(0, "utf8"));
const out = calls.map(({ fn, args }) => {
  try {
    return { result: plain(hands[fn](...args.map(typed))) };
  } catch (err) {
    return { error: err.message };
  }
});
process.stdout.write(JSON.stringify(out));
