// The content half of the model's second version (issue 15): what an item's listeners will be,
// predicted from its content and its KG links, for items nobody has played yet. It is the content
// ridge of fusion/content_regression.h with three changes, each chosen on the same pseudo-cold
// validation from measurements (docs/results.md, "The model's second version"):
//   * an RBF kernel on each modality's cosine, so that near-duplicates count for much more than
//     items that merely share a vocabulary;
//   * KG one-hots weighted by inverse item frequency, so that a genre linked to hundreds of items
//     blurs a cold item less than a director linked to three;
//   * a predicted popularity beside the predicted factors.
// Plain arrays, LAPACK and BLAS, no store and no LibTorch, behind the Baseline interface.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fusion/baselines.h"
#include "fusion/eval_data.h"

namespace mosaic::fusion {

// Features of an item:
//   each modality m of EvalData::modalities: its row, L2-normalised (absent or all-zero: none);
//   the KG (when use_kg): a triple (h, r, t) gives an item h the feature (r, t, forward) and an item
//     t the feature (r, h, backward), weighted idf_f = ln(1 + N / df_f) (N the items with a KG
//     feature, df_f those with f), each item's KG row L2-normalised.
// Kernel: K(i, j) = w_text * sum over the modalities both have of k_g(cos_m(i, j))
//                   + (1 - w_text) * <kg(i), kg(j)>,      k_g(c) = exp(g (c - 1)), k_0(c) = c;
//   without use_kg (or with no KG feature anywhere) w_text is 1.
// Targets: P, Q = TruncatedSvd(train, rank) and pop(i) = ln(1 + training interactions of i).
// Ridge in the dual over the training items with a feature: [Qhat | pophat](i) = K(i, T)
//   (K(T, T) + lambda I)^-1 [Q | pop](T), for every item.
// score(u, i) = P(u) . Qhat(i) / sd_u + c * (pophat(i) - mean) / sd, sd_u the standard deviation
//   of P(u) . Qhat over all items (1 when 0), mean and sd those of pophat over all items.
//
// Hyper-parameters are chosen on the pseudo-cold validation of MakeContentRidge (the same held-out
// items for the same seed; Fit's `valid` is ignored): g in {0, 4, 8}, w_text in {0.5, 0.75, 0.9, 1}
// (1, the KG left out, is in the grid so that the KG has to earn its weight; 1 alone without the
// KG), lambda in {0.1, 1, 10}, rank in {16, 32, 64, 128} (capped as there),
// c in {0, 0.25, 0.5, 1, 2}; the best validation Recall@20 is kept (the earlier on a tie) and the
// model refitted on every training interaction. tuning() reports the grid ("g=8 w_text=0.75
// lambda=1 rank=16 pop=0.25").
//
// Cost: one Cholesky factorisation per (g, w_text, lambda) over ~0.8 n training items with
// content, then one over n; the Grams in double (8 n^2 bytes per modality and for the KG).
// Throws as MakeContentRidge's Fit and ScoreUser do.
std::unique_ptr<Baseline> MakeContentKernel(std::string name, bool use_kg, uint64_t seed);

}  // namespace mosaic::fusion
