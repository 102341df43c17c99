// Baseline recommenders the fusion model is compared against, in the same harness: warm-start
// (most-popular, ItemKNN, BPR-MF, and the tuned peers of issue 14: EASE^R, RP3beta, ItemKNN with a
// chosen neighbourhood and shrink) and cold-start ones that see a new item only through its
// knowledge-graph entities or its text (attribute popularity, KG overlap, text kNN). Plain arrays
// and LAPACK (EASE's Cholesky), no store and no LibTorch, so they run on hand-made EvalData in tests.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "fusion/eval_data.h"
#include "fusion/metrics.h"

namespace mosaic::fusion {

// Score given to items a baseline cannot score at all (TextKnn: items without text). Finite, not
// -inf, so that Platt scaling and sorting stay well defined, yet below any real score.
inline constexpr float kUnscorable = -1e9f;

// One point of a validation grid search: the hyper-parameters as text ("lambda=100") and what
// the peer fitted with them scored on the validation interactions.
struct GridPoint {
  std::string setting;        ///< "name=value" pairs separated by spaces
  double valid_recall20 = 0;  ///< Recall@20 on the validation split
  double valid_ndcg20 = 0;    ///< NDCG@20 on the validation split
};

// The grid search behind a tuned peer's last Fit.
struct Tuning {
  std::vector<GridPoint> grid;  ///< in the order tried
  size_t chosen = 0;            ///< index into grid of the point kept
};

// The item representations of a dot-product model (score(u, i) = x_u . v_i), row-major
// [rows, dim]; data is nullptr for models that are not one.
struct ItemFactors {
  const float* data = nullptr;
  size_t rows = 0;
  size_t dim = 0;
};

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

  // The validation grid search of the last Fit, for peers that choose hyper-parameters on the
  // validation split (MakeTuned); nullptr for the others and before Fit.
  virtual const Tuning* tuning() const { return nullptr; }

  // For dot-product models after Fit: their item representations (valid until the next Fit), which
  // MakeUsersFromHistory folds users into. Empty for the others.
  virtual ItemFactors Factors() const { return {}; }
};

// Scores every user with relevant items on hardware_concurrency() threads and accumulates ranking
// metrics: for user u, candidates(u, &list) fills the items to rank and relevant(u) names the held-out
// ones (users with none are skipped). `model` must be fitted (ScoreUser is const and thread-safe).
// With `per_user_recall20`, it is resized to num_users and holds each user's Recall@20 (NaN for
// the users skipped), for paired statistics (PairedBootstrapRatio).
RankingMetrics RankUsers(const Baseline& model, uint32_t num_users,
                         const std::function<void(uint32_t, std::vector<uint32_t>*)>& candidates,
                         const std::function<const std::vector<uint32_t>&(uint32_t)>& relevant,
                         std::vector<double>* per_user_recall20 = nullptr);

// Scores standardised over the items (mean 0, sd 1; all zeros when constant), as MakeBlend uses them.
void Standardise(std::vector<float>* scores);

// score(u, i) = z1(u, i) + w z2(u, i), z the scores of `first` and `second` standardised over the
// items for the user; w chosen among `weights` (in order; ties to the earlier) on the validation
// split of Fit, the first one when it is empty. Both models must be fitted before this one (they
// are read, not refitted) and outlive it. Named `name`; tuning() reports "weight=w" per candidate.
std::unique_ptr<Baseline> MakeBlend(std::string name, const Baseline* first, const Baseline* second,
                                    std::vector<double> weights);

// Non-personalised: score(i) = number of training interactions of item i.
std::unique_ptr<Baseline> MakeMostPopular();

// Item-item cosine on the binary training user-item matrix, with a shrink term (Dacrema et al.'s
// ItemKNN-CF): sim(i, j) = |U(i) ∩ U(j)| / (sqrt(|U(i)| |U(j)|) + shrink), U(i) the training users
// of i. Each item keeps only its top `neighbours` most similar items (ties to the lower index).
// score(u, i) = sum over u's training items j among i's kept neighbours of sim(i, j). Named
// "ItemKNN (top-<neighbours>)", with ", shrink <s>" when shrink > 0.
std::unique_ptr<Baseline> MakeItemKnn(size_t neighbours = 100, double shrink = 0);

// How EASE solves for P = (X^T X + lambda I)^-1. kItems factors the items x items Gram matrix
// (float32, num_items^2 * 4 bytes: 1.24 GB for Last.FM's 17,632 items) and keeps B dense; kUsers
// uses the push-through identity X P = (X X^T + lambda I)^-1 X, factoring a users x users matrix
// (float64) and computing x_u P and diag(P) from it: the same B, in min(users, items)^3 time.
// kAuto picks the smaller side.
enum class EaseSolve { kAuto, kItems, kUsers };

// EASE^R (Steck, WWW 2019) on the binary training matrix X (users x items):
// B = I - P diag(1 / diag P), P = (X^T X + lambda I)^-1, so diag(B) = 0, and score(u) = x_u B.
// Cholesky factor and inverse by LAPACK (spotrf/spotri in the item space, dpotrf/dpotri in the
// user space). Items without training interactions score 0. Throws std::invalid_argument for
// lambda <= 0 and std::runtime_error when LAPACK fails (a matrix that is not positive definite).
std::unique_ptr<Baseline> MakeEase(double lambda, EaseSolve solve = EaseSolve::kAuto);

// RP3beta (Paudel et al., TiiS 2017; as in Dacrema et al.'s reference code) on the binary training
// matrix: P(u|i) = 1 / |U(i)| and P(j|u) = 1 / |I(u)| (the row-normalised X^T and X), each raised
// to `alpha`; W(i, j) = sum over u of P(u|i)^alpha P(j|u)^alpha / |U(j)|^beta for j != i.
// Each item i keeps its `neighbours` largest W(i, .) (ties to the lower j); score(u, j) = sum over
// u's training items i of the kept W(i, j). Throws std::invalid_argument for neighbours == 0.
std::unique_ptr<Baseline> MakeRp3Beta(double alpha, double beta, size_t neighbours);

// One candidate of a grid: its setting text and how to make the peer.
struct GridCandidate {
  std::string setting;                                ///< e.g. "alpha=0.5 beta=0.2 k=100"
  std::function<std::unique_ptr<Baseline>()> make;    ///< a new, unfitted peer
};

// A peer whose hyper-parameters are chosen on the validation split, never on test. Fit(data,
// train, valid) fits every candidate on `train` and measures it on `valid` as the warm protocol
// measures test: Recall@20 over the users with validation interactions, ranking every item not in
// the user's training set, ties to the lower index. It keeps the candidate with the best
// validation Recall@20 (the earlier one on a tie); that model was fitted on `train` alone, so it
// is what a refit on train would give (every candidate here is deterministic). With an empty
// `valid` it keeps the first candidate without measuring. tuning() reports the grid. Scores users
// on hardware_concurrency() threads. Throws std::invalid_argument for an empty grid.
std::unique_ptr<Baseline> MakeTuned(std::string name, std::vector<GridCandidate> grid);

// The tuned warm peers of `mosaic eval` (issue 14), with their grids:
// EASE, lambda in {10, 50, 100, 200, 500, 1000, 2000};
std::unique_ptr<Baseline> MakeTunedEase();
// RP3beta, alpha in {0.5, 1}, beta in {0, 0.2, 0.4, 0.6}, k in {50, 100, 200};
std::unique_ptr<Baseline> MakeTunedRp3Beta();
// "ItemKNN (tuned)", k in {50, 100, 200, 500}, shrink in {0, 10, 50, 100}.
std::unique_ptr<Baseline> MakeTunedItemKnn();

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
