// The SentencePiece-unigram tokenizer of USE-lite, bit-for-bit the one of the reference JavaScript runtime
// (@energetic-ai/embeddings 0.2.0, itself the tokenizer of @tensorflow-models/universal-sentence-encoder).
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "store/status.h"

namespace mosaic::encoders {

// The id of an unknown stretch of text (vocab.json's entry 0, "\uFFFD"); runs of unknowns merge into one.
inline constexpr int kUnknownId = 0;

// SentencePiece-unigram tokenizer of USE-lite with the reference runtime's exact rules (SPEC.md):
//  1. NFKC (ICU); 2. if non-empty, prefix U+2581 and turn every ASCII space into U+2581 (runs kept);
//  3. lattice over code points of every vocabulary piece starting at each position (entries 0-5 are
//     reserved and never matched; a position where no piece starts gets an unknown piece of length 1,
//     score 0); 4. forward pass, candidates of an end in ascending start order, score = piece score +
//     best[start], accepted when best[end] == 0 (unset) || score >= best[end], so ties go to the later
//     candidate; 5. backtrack from the end, an unreached position yielding id 0 of length 1; 6. merge runs
//     of id 0. An id is the piece's index in vocab.json (0-based; the embedding matrix has 8002 rows, the
//     last two never used); a piece listed twice gets its last index, as the runtime's trie does.
// Encode never truncates: the model keeps the first 128 ids (USE-lite's graph drops the rest).
// Immutable once loaded, so Encode may be called from many threads at once.
class Tokenizer {
 public:
  // Loads vocab.json (an array of [piece, score] pairs, 8000 for USE-lite; a null score counts as 0.0).
  // On success stores the tokenizer in *tokenizer and returns OK. On error leaves *tokenizer as it
  // was and returns a status naming the file: NotFound when it is missing, IOError when it cannot be
  // opened, Corruption when it is not JSON or not of that shape.
  static Status Load(const std::string& vocab_json_path, std::unique_ptr<Tokenizer>* tokenizer);

  // All ids of `text` (UTF-8), no truncation. Invalid UTF-8 is read as U+FFFD (one per maximal ill-formed
  // subsequence, as TextDecoder does) before NFKC. The empty string (or one that normalises to nothing)
  // gives no ids. Throws ModelError for a text over 2 GiB or when ICU cannot normalise.
  std::vector<int64_t> Encode(std::string_view text) const;

  size_t vocab_size() const { return vocab_size_; }  // 8000 for USE-lite

  // Entries 0..kReserved-1 of vocab.json are reserved and never matched.
  static constexpr int kReserved = 6;

 private:
  struct Node {
    int32_t id = -1;     // the piece ending here (vocab index), or -1
    double score = 0.0;  // its score
  };
  struct Edge {
    uint64_t key = kEmpty;  // (parent << 21) | code point
    int32_t child = 0;
  };
  static constexpr uint64_t kEmpty = ~uint64_t{0};

  Tokenizer() = default;
  void Insert(const std::u32string& piece, int32_t id, double score);
  int32_t Child(int32_t node, char32_t cp) const;
  int32_t AddChild(int32_t node, char32_t cp);
  void Grow();
  void EncodeCodePoints(const std::u32string& cps, std::vector<int64_t>* ids) const;

  size_t vocab_size_ = 0;
  std::vector<Node> nodes_;  // the trie; node 0 is the root
  std::vector<Edge> edges_;  // open-addressing hash table of the trie's edges, size a power of two
  size_t edge_count_ = 0;
};

}  // namespace mosaic::encoders
