// Baseline recommenders the fusion model is compared against, in the same harness: warm-start
// (most-popular, ItemKNN, BPR-MF) and cold-start ones that see a new item only through its
// knowledge-graph entities or its text (attribute popularity, KG overlap, text kNN). Standard
// library only, so they run on hand-made EvalData in tests.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "fusion/eval_data.h"

namespace mosaic::fusion {

// Score given to items a baseline cannot score at all (TextKnn: items without text). Finite, not
// -inf, so that Platt scaling and sorting stay well defined, yet below any real score.
inline constexpr float kUnscorable = -1e9f;

// A scorer fitted on the training interactions, scoring every item for a user.
class Baseline {
 public:
  virtual ~Baseline() = default;

  // Row name in the results table.
  virtual std::string name() const = 0;

  // Fits on data.interactions[i] for i in `train`; `valid` (may be empty) is for early stopping
  // only. Calling Fit again refits from scratch. Throws std::invalid_argument when an index, user,
  // item or text dimension is out of line with `data`.
  virtual void Fit(const EvalData& data, const std::vector<uint32_t>& train, const std::vector<uint32_t>& valid) = 0;

  // Scores every item for `user` (< data.num_users): scores->size() == data.num_items afterwards,
  // higher = more recommended. Training items are scored like any other: masking them is the
  // caller's job. Thread-safe after Fit (const, no shared scratch), so callers parallelise over users.
  virtual void ScoreUser(uint32_t user, std::vector<float>* scores) const = 0;
};

// Non-personalised: score(i) = number of training interactions of item i.
std::unique_ptr<Baseline> MakeMostPopular();

// Item-item cosine on the binary training user-item matrix; each item keeps only its top
// `neighbours` most similar items (ties to the lower index). score(u, i) = sum over u's training
// items j among i's kept neighbours of sim(i, j).
std::unique_ptr<Baseline> MakeItemKnn(size_t neighbours = 100);

// BPR-MF (Rendle et al., UAI 2009) with item biases: single-threaded SGD over uniformly drawn
// training pairs with uniform negative sampling, lr 0.05, L2 1e-4, init std 0.1 (weights
// ignored: implicit feedback). With a non-empty `valid`, runs up to 60 epochs and keeps the epoch
// with the best Recall@20 on up to 500 sampled validation users (patience 5); without, runs 30.
// Deterministic for a fixed seed: own generator and bounded draws, no std distributions.
std::unique_ptr<Baseline> MakeBprMf(uint32_t factors = 64, uint64_t seed = 1);

// Cold-start, non-personalised: score(i) = sum over i's KG entities e of popularity(e), where
// popularity(e) = number of training interactions of items linked to e. Needs no interaction of i.
std::unique_ptr<Baseline> MakeAttributePopularity();

// Cold-start, personalised: score(u, i) = sum over u's training items j of
// log1p(weight(u, j)) * |entities(i) ∩ entities(j)|.
std::unique_ptr<Baseline> MakeKgOverlap();

// Cold-start, content only: score(u, i) = cosine(text(i), profile(u)), profile(u) = the
// log1p(weight)-weighted mean of text(j) over u's training items j that have text. Items without
// text score kUnscorable; a user with no such item scores every item with text 0.
std::unique_ptr<Baseline> MakeTextKnn();

}  // namespace mosaic::fusion
