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
#include <vector>

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
// items for the same seed, and with KernelGrid::folds > 1 further disjoint fifths, the figures
// averaged; Fit's `valid` is ignored): g in {0, 4, 8}, w_text in {0.5, 0.75, 0.9, 1}
// (1, the KG left out, is in the grid so that the KG has to earn its weight; 1 alone without the
// KG), lambda in {0.1, 1, 10}, rank in {16, 32, 64, 128} (capped as there),
// c in {0, 0.25, 0.5, 1, 2}; the best validation Recall@20 is kept (the earlier on a tie) and the
// model refitted on every training interaction. tuning() reports the grid ("g=8 w_text=0.75
// lambda=1 rank=16 pop=0.25").
//
// Cost: one Cholesky factorisation per (g, w_text, lambda) and fold over ~0.8 n training items with
// content, then one over n; the Grams in double (8 n^2 bytes per modality and for the KG).
// Throws as MakeContentRidge's Fit and ScoreUser do.
// One point of the kernel's grid.
struct KernelPoint {
  double g = 0;         ///< RBF width of the modality kernels (0: linear)
  double w_text = 1;    ///< the modalities' share of the kernel (1: the KG left out)
  double lambda = 1;    ///< ridge
  uint32_t rank = 16;   ///< factor columns predicted and scored
  double pop = 0;       ///< c, the predicted popularity's weight
};

// A KG feature of an item: the triple (item, relation, node) walked forward, or (node, relation,
// item) walked backward. Numbered as EvalData numbers them until a caller re-keys them (a model
// version stores them by store ids).
struct KgFeatureKey {
  uint32_t relation = 0;
  uint32_t node = 0;  ///< item index, or num_items + entity index
  uint8_t backward = 0;
};

// What a fitted kernel needs to place an item it never saw: the support (the training items with a
// feature), their features, and the dual coefficients.
struct ContentKernelState {
  KernelPoint point;
  std::vector<std::string> modalities;               ///< names, EvalData::modalities' order
  std::vector<uint32_t> dims;                        ///< their widths
  std::vector<std::vector<float>> support_rows;      ///< per modality: [support x dim], L2-normalised, 0 where absent
  std::vector<std::vector<uint8_t>> support_has;     ///< per modality: the support item has it
  std::vector<KgFeatureKey> kg_keys;                 ///< the KG features met in the training items
  std::vector<float> kg_idf;                         ///< their weights, ln(1 + N / df)
  std::vector<uint32_t> support_kg_offsets;          ///< support + 1 offsets into the two below
  std::vector<uint32_t> support_kg_ids;              ///< indices into kg_keys
  std::vector<float> support_kg_values;              ///< idf, each support item's row L2-normalised
  std::vector<double> coefficients;                  ///< [support x (rank + 1)]
  double pop_mean = 0, pop_sd = 1;                   ///< of the predicted popularity over the fitted items

  size_t support() const { return support_kg_offsets.empty() ? 0 : support_kg_offsets.size() - 1; }
};

// The content kernel with what its fit learnt, for the served model (fusion/second_version.h).
class ContentKernel : public Baseline {
 public:
  // After Fit: the state, the chosen point, the SVD's item factors Q and the predicted Qhat
  // ([num_items x rank] each), and each item's standardised predicted popularity.
  virtual const ContentKernelState& state() const = 0;
  virtual const std::vector<double>& cf_items() const = 0;
  virtual const std::vector<double>& predicted() const = 0;
  virtual const std::vector<double>& pop_z() const = 0;
};

// A grid for the kernel's search; empty members take the defaults above. w_texts other than 1 are
// dropped where the KG is left out or absent.
struct KernelGrid {
  std::vector<double> gs, w_texts, lambdas, pops;
  /// The search's solves in single precision: half their time, the largest cost of a fit; what it
  /// chooses is refitted in double either way. For grids whose lambdas are at least 1 (conditioning).
  bool single_precision = false;
  /// The refit at the chosen point in single precision too: for a fit whose scores only choose
  /// between settings (the model served is refitted after).
  bool refit_single_precision = false;
  /// Pseudo-cold folds: disjoint fifths of the training items, each held out in turn (fewer where
  /// the items run out); the point with the best mean Recall@20 over them is kept. More folds, less
  /// noise in the choice, at one grid's cost each.
  uint32_t folds = 1;
};

std::unique_ptr<ContentKernel> MakeContentKernel(std::string name, bool use_kg, uint64_t seed,
                                                 KernelGrid grid = {});

// The same fitted at `point`, with no grid search (tuning() reports that point alone);
// `single_precision` solves in float, for a fit whose scores only choose between settings.
std::unique_ptr<ContentKernel> MakeContentKernelAt(std::string name, bool use_kg, KernelPoint point,
                                                   bool single_precision = false);

// An item's predicted factors [rank] and standardised predicted popularity from its content, as Fit
// predicts them for the items it was fitted with: `modality_rows` parallel to state.modalities (raw
// rows of their widths, nullptr where absent), `kg` indices into state.kg_keys (unknown features are
// the caller's to drop; repeats count once).
void PlaceByContent(const ContentKernelState& state, const std::vector<const float*>& modality_rows,
                    const std::vector<uint32_t>& kg, std::vector<double>* factors, double* pop_z);

}  // namespace mosaic::fusion
