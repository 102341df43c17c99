#include "encoders/tokenizer.h"

#include <unicode/normalizer2.h>
#include <unicode/stringpiece.h>
#include <unicode/unistr.h>
#include <unicode/utf16.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "encoders/model_error.h"

namespace mosaic::encoders {
namespace {

constexpr char32_t kSpaceMark = 0x2581;  // "▁", SentencePiece's word-boundary mark

// Decodes UTF-8 that is known to be valid (nlohmann-json checks every string it parses).
std::u32string DecodeValidUtf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const auto b = static_cast<unsigned char>(s[i]);
    const int n = b < 0x80 ? 1 : b < 0xE0 ? 2 : b < 0xF0 ? 3 : 4;
    char32_t c = n == 1 ? b : n == 2 ? (b & 0x1F) : n == 3 ? (b & 0x0F) : (b & 0x07);
    for (int k = 1; k < n && i + k < s.size(); ++k) c = (c << 6) | (static_cast<unsigned char>(s[i + k]) & 0x3F);
    out.push_back(c);
    i += n;
  }
  return out;
}

size_t EdgeSlot(uint64_t key, size_t mask) {
  return static_cast<size_t>((key * 0x9E3779B97F4A7C15ULL) >> 32) & mask;
}

// Scratch buffers of Encode, reused by each thread so that a call allocates only its result.
struct Scratch {
  std::u32string cps;
  std::vector<double> best;
  std::vector<int32_t> word;
  std::vector<int32_t> length;
  std::vector<int64_t> reversed;
};

Scratch& ThreadScratch() {
  thread_local Scratch scratch;
  return scratch;
}

}  // namespace

Status Tokenizer::Load(const std::string& vocab_json_path, std::unique_ptr<Tokenizer>* tokenizer) {
  const std::string& path = vocab_json_path;
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) return Status::NotFound(path + ": the vocabulary file does not exist");
  if (!std::filesystem::is_regular_file(path, ec)) {
    return Status::Corruption(path + ": the vocabulary is not a regular file");
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError(path + ": cannot open the vocabulary: " + std::strerror(errno));
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(in);
  } catch (const nlohmann::json::exception& e) {
    return Status::Corruption(path + ": the vocabulary is not valid JSON: " + e.what());
  }
  if (!j.is_array()) {
    return Status::Corruption(path + ": the vocabulary must be a JSON array of [piece, score] pairs");
  }
  if (j.size() < static_cast<size_t>(kReserved)) {
    return Status::Corruption(path + ": the vocabulary has " + std::to_string(j.size()) + " entries, fewer than the " +
                              std::to_string(kReserved) + " reserved ones");
  }
  if (j.size() > static_cast<size_t>(INT32_MAX)) return Status::Corruption(path + ": the vocabulary is too large");

  std::unique_ptr<Tokenizer> t(new Tokenizer());
  t->vocab_size_ = j.size();
  t->nodes_.emplace_back();  // root
  t->edges_.assign(1 << 16, Edge{});
  for (size_t i = 0; i < j.size(); ++i) {
    const nlohmann::json& e = j[i];
    if (!e.is_array() || e.size() != 2 || !e[0].is_string() || !(e[1].is_number() || e[1].is_null())) {
      return Status::Corruption(path + ": vocabulary entry " + std::to_string(i) +
                                " is not a [piece, score] pair of a string and a number or null: " + e.dump());
    }
    if (i < static_cast<size_t>(kReserved)) continue;  // reserved: never matched
    const double score = e[1].is_null() ? 0.0 : e[1].get<double>();
    const std::u32string piece = DecodeValidUtf8(e[0].get_ref<const std::string&>());
    if (!piece.empty()) t->Insert(piece, static_cast<int32_t>(i), score);
  }
  *tokenizer = std::move(t);
  return Status::OK();
}

void Tokenizer::Insert(const std::u32string& piece, int32_t id, double score) {
  int32_t node = 0;
  for (char32_t cp : piece) {
    const int32_t child = Child(node, cp);
    node = child >= 0 ? child : AddChild(node, cp);
  }
  // A piece listed twice takes its last index and score, as the runtime's trie does.
  nodes_[node].id = id;
  nodes_[node].score = score;
}

int32_t Tokenizer::Child(int32_t node, char32_t cp) const {
  const uint64_t key = (static_cast<uint64_t>(node) << 21) | cp;
  const size_t mask = edges_.size() - 1;
  for (size_t slot = EdgeSlot(key, mask);; slot = (slot + 1) & mask) {
    const Edge& e = edges_[slot];
    if (e.key == key) return e.child;
    if (e.key == kEmpty) return -1;
  }
}

int32_t Tokenizer::AddChild(int32_t node, char32_t cp) {
  if ((edge_count_ + 1) * 2 > edges_.size()) Grow();
  const int32_t child = static_cast<int32_t>(nodes_.size());
  nodes_.emplace_back();
  const uint64_t key = (static_cast<uint64_t>(node) << 21) | cp;
  const size_t mask = edges_.size() - 1;
  size_t slot = EdgeSlot(key, mask);
  while (edges_[slot].key != kEmpty) slot = (slot + 1) & mask;
  edges_[slot] = Edge{key, child};
  ++edge_count_;
  return child;
}

void Tokenizer::Grow() {
  std::vector<Edge> old(edges_.size() * 2, Edge{});
  old.swap(edges_);
  const size_t mask = edges_.size() - 1;
  for (const Edge& e : old) {
    if (e.key == kEmpty) continue;
    size_t slot = EdgeSlot(e.key, mask);
    while (edges_[slot].key != kEmpty) slot = (slot + 1) & mask;
    edges_[slot] = e;
  }
}

std::vector<int64_t> Tokenizer::Encode(std::string_view text) const {
  std::u32string& cps = ThreadScratch().cps;
  cps.clear();
  if (text.empty()) return {};

  const bool ascii = std::all_of(text.begin(), text.end(), [](char c) { return static_cast<unsigned char>(c) < 0x80; });
  if (ascii) {
    // ASCII is NFKC-invariant: skip ICU.
    cps.reserve(text.size() + 1);
    cps.push_back(kSpaceMark);
    for (char c : text) cps.push_back(c == ' ' ? kSpaceMark : static_cast<char32_t>(c));
  } else {
    if (text.size() > static_cast<size_t>(INT32_MAX)) throw ModelError("text too long to tokenize (over 2 GiB)");
    UErrorCode status = U_ZERO_ERROR;
    static const icu::Normalizer2* const nfkc = [] {
      UErrorCode st = U_ZERO_ERROR;
      const icu::Normalizer2* n = icu::Normalizer2::getNFKCInstance(st);
      if (U_FAILURE(st)) throw ModelError(std::string("ICU has no NFKC normaliser: ") + u_errorName(st));
      return n;
    }();
    // fromUTF8 turns each maximal ill-formed subsequence into one U+FFFD.
    const icu::UnicodeString in =
        icu::UnicodeString::fromUTF8(icu::StringPiece(text.data(), static_cast<int32_t>(text.size())));
    const icu::UnicodeString norm = nfkc->normalize(in, status);
    if (U_FAILURE(status)) throw ModelError(std::string("NFKC normalisation failed: ") + u_errorName(status));
    if (norm.isEmpty()) return {};
    cps.reserve(static_cast<size_t>(norm.length()) + 1);
    cps.push_back(kSpaceMark);
    const char16_t* u = norm.getBuffer();
    const int32_t n = norm.length();
    for (int32_t i = 0; i < n;) {
      UChar32 c;
      U16_NEXT(u, i, n, c);
      cps.push_back(c == ' ' ? kSpaceMark : static_cast<char32_t>(c));
    }
  }
  std::vector<int64_t> ids;
  EncodeCodePoints(cps, &ids);
  return ids;
}

void Tokenizer::EncodeCodePoints(const std::u32string& cps, std::vector<int64_t>* ids) const {
  Scratch& scratch = ThreadScratch();
  const size_t n = cps.size();
  std::vector<double>& best = scratch.best;        // best score of a path to each position; 0 = unset
  std::vector<int32_t>& word = scratch.word;       // id of the last piece of that path
  std::vector<int32_t>& length = scratch.length;   // its length in code points (0 = unset, read as 1)
  best.assign(n + 1, 0.0);
  word.assign(n + 1, kUnknownId);
  length.assign(n + 1, 0);
  auto relax = [&](size_t end, double score, int32_t id, int32_t len) {
    if (best[end] == 0 || score >= best[end]) {  // the runtime's rule: 0 means unset; ties go to the later
      best[end] = score;
      word[end] = id;
      length[end] = len;
    }
  };
  // Candidates are visited by ascending start; for any one end that is the runtime's order, and best[start]
  // is final by then since every piece ending at `start` begins before it.
  for (size_t s = 0; s < n; ++s) {
    int32_t node = 0;
    bool matched = false;
    for (size_t e = s; e < n; ++e) {
      node = Child(node, cps[e]);
      if (node < 0) break;
      const Node& nd = nodes_[node];
      if (nd.id >= 0) {
        matched = true;
        relax(e + 1, nd.score + best[s], nd.id, static_cast<int32_t>(e + 1 - s));
      }
    }
    if (!matched) relax(s + 1, 0.0 + best[s], kUnknownId, 1);  // no piece starts here: one unknown symbol
  }
  std::vector<int64_t>& reversed = scratch.reversed;
  reversed.clear();
  for (size_t i = n; i > 0;) {
    reversed.push_back(word[i]);
    const size_t len = length[i] > 0 ? static_cast<size_t>(length[i]) : 1;
    i = len >= i ? 0 : i - len;
  }
  ids->clear();
  ids->reserve(reversed.size());
  for (auto it = reversed.rbegin(); it != reversed.rend(); ++it) {
    if (*it == kUnknownId && !ids->empty() && ids->back() == kUnknownId) continue;  // merge runs of unknowns
    ids->push_back(*it);
  }
}

}  // namespace mosaic::encoders
