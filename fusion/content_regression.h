// A cold-start peer of issue 14 that learns the map from content to collaborative factors: a
// truncated SVD of the binary training matrix gives every user and training item a factor vector,
// and kernel ridge regression from the items' content (text and other modality vectors, KG
// neighbourhood) to their item factors predicts a factor vector for any item with content, cold
// ones included. Plain arrays and LAPACK (dsyevr for the SVD, dpotrf/dpotrs for the ridge), no
// store and no LibTorch, like the peers of fusion/baselines.h, behind the same Baseline interface.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "fusion/baselines.h"
#include "fusion/eval_data.h"

namespace mosaic::fusion {

// Which content a model may regress from.
//   kAll:  every modality of EvalData::modalities (text, visual, audio, ...) and the KG;
//   kText: the "text" modality only;
//   kKg:   the KG only.
enum class ContentParts { kAll, kText, kKg };

// A rank-r truncated SVD X ≈ P Q^T of the binary training matrix X (users x items, 1 where a
// training interaction exists; weights and duplicates do not matter): P = U Σ, Q = V.
struct CfFactors {
  uint32_t rank = 0;          ///< columns of both factor matrices
  std::vector<double> users;  ///< P: num_users x rank, row-major
  std::vector<double> items;  ///< Q: num_items x rank, row-major
};

// The rank-`rank` truncated SVD of the training matrix of data.interactions[i], i in `train`,
// column k the k-th largest singular triple. Computed on the smaller side of the matrix restricted
// to its users and items with training interactions: the top eigenpairs of X X^T (or of X^T X when
// there are fewer such items than users) by LAPACK dsyevr in double, the other side's factors by
// one product with X (Q = X^T U Σ^-1, or P = X V). Users and items without training interactions
// have zero factors, and so does every column beyond the matrix's rank (beyond the smaller side's
// count, or with σ_k^2 <= 1e-10 σ_1^2). Each column's sign is fixed so that its largest-magnitude
// user entry (first one on a tie) is positive. Throws std::invalid_argument for rank == 0 or an
// index, user or item out of line with `data`; std::runtime_error when LAPACK fails.
CfFactors TruncatedSvd(const EvalData& data, const std::vector<uint32_t>& train, uint32_t rank);

// Content-to-collaborative ridge regression with fixed hyper-parameters, no tuning.
//
// Collaborative factors: P, Q = TruncatedSvd(train, rank).
// Content features of an item, one vector per part, each L2-normalised (an all-zero vector, or an
// item a modality marks absent, has no feature in that part):
//   a modality m of EvalData::modalities: the item's row;
//   the KG: one-hot (relation, neighbour node, direction) features from EvalData::kg_triples: a
//     triple (h, r, t) gives an item h the feature (r, t, forward) and an item t the feature
//     (r, h, backward) (a node < num_items is an item, else entity node - num_items).
// Kernel: K(i, j) = sum over parts p of w_p <f_p(i), f_p(j)>, the weights being w_text for every
// modality and 1 - w_text for the KG under kAll, and 1 for the one part of kText ("text") and kKg.
// Regression, in the dual: over T = the training items (items with a training interaction) that
// have a feature in an allowed part, Qhat(i) = K(i, T) (K(T, T) + lambda I)^-1 Q(T), solved by a
// Cholesky factorisation in double. Leaving out the training items without content changes
// nothing: their kernel rows are zero, so they add a constant to the ridge objective.
// score(u, i) = P(u) . Qhat(i) for every item, warm ones included (their own factors are replaced
// by the predicted ones); an item with no feature in an allowed part gets Qhat = 0 and scores 0,
// as does everything when T is empty. Fit's `valid` is ignored.
//
// Named "Content ridge (all)", "Content ridge (text)" or "Content ridge (KG)". Deterministic.
// Throws std::invalid_argument for rank == 0, lambda not > 0 or not finite, w_text outside
// [0, 1], or parts not one of the enumerators; Fit throws std::invalid_argument when an index,
// user or item is out of range, a modality's arrays do not have num_items rows or hold a
// non-finite value, or a KG triple names a node >= num_items + num_entities or a relation >=
// num_kg_relations, and std::runtime_error when LAPACK fails. ScoreUser throws
// std::invalid_argument for user >= num_users and std::logic_error before Fit.
std::unique_ptr<Baseline> MakeContentRidgeFixed(ContentParts parts, uint32_t rank, double lambda,
                                                double w_text = 0.5);

// What MakeContentRidgeFixed's Fit computes, in double, for tests and tools: the training matrix's
// factors and the predicted item factors, so that score(u, i) = cf.users[u] . predicted[i].
struct ContentRidgeFactors {
  CfFactors cf;                   ///< P and Q = TruncatedSvd(data, train, rank)
  std::vector<double> predicted;  ///< Qhat: num_items x rank, row-major
};

// Fits as MakeContentRidgeFixed(parts, rank, lambda, w_text) and returns its factors; throws as
// its constructor and Fit do.
ContentRidgeFactors FitContentRidge(const EvalData& data, const std::vector<uint32_t>& train, ContentParts parts,
                                    uint32_t rank, double lambda, double w_text = 0.5);

// The tuned cold peer of `mosaic eval --protocol cold`: MakeContentRidgeFixed with rank, lambda
// and (kAll only) w_text chosen on a cold validation, never on test. The grid: rank in
// {16, 32, 64, 128}, each capped at max(1, min(users, items) - 1) counting the users and items
// with training interactions (duplicates after capping dropped), lambda in {0.1, 1, 10, 100, 1000},
// and under kAll w_text in {0.25, 0.5, 0.75}; in that nesting order (rank outermost), with
// settings written "rank=64 lambda=10 w_text=0.5" ("rank=64 lambda=10" for kText and kKg).
//
// Validation: the `valid` interactions of Fit belong to warm items, so they cannot measure a
// cold-start model and are ignored. Instead round(0.2 m) of the m training items are held out as
// pseudo-cold items (a Fisher-Yates shuffle by SplitMix64 seeded from `seed`); the SVD and the
// ridge are fitted on the training interactions of the other items, and each grid point is
// measured as the cold protocol measures test: for every user with a training interaction with a
// held-out item, Recall@20 and NDCG@20 of ranking the held-out items (RankUsers). The point with
// the best validation Recall@20 is kept (the earlier one on a tie) and the model is refitted on
// all training interactions with it. The SVD is computed once at the largest rank and truncated,
// and the kernel is factored once per (weights, lambda). With fewer than 3 training items
// (nothing or everything would be held out) the first grid point is kept without measuring, its
// validation metrics reported as 0. tuning() reports the grid of the last Fit.
//
// Cost: the per-part Grams over the n training items with content are kept in double (8 n^2
// bytes each, two under kAll) and each grid (weights, lambda) factors a ~0.8 n square matrix, so
// time grows as n^3: on synthetic data of Last.FM's size (1.9k users, 3.8k items, ~3k training
// items, text width 512) the kAll Fit takes ~8 s on two cores, at MovieLens's (610 users, ~7.8k
// training items) ~35 s and 1.5 GB.
//
// Throws std::invalid_argument for parts not one of the enumerators, and from Fit and ScoreUser
// as MakeContentRidgeFixed.
std::unique_ptr<Baseline> MakeContentRidge(ContentParts parts, uint64_t seed);

}  // namespace mosaic::fusion
