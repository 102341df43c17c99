// Exploration: a few positions of a list go to items the model knows little about, chosen by
// Thompson sampling (Thompson 1933; Chapelle & Li, NIPS 2011), so that a new item placed only by
// its content and KG neighbours earns plays, or loses its place, by what listeners do with it.
//
// Each candidate's probability of being played when shown has a Beta prior centred on the model's
// opinion (its score for the user, calibrated to a probability) and worth `prior_strength`
// impressions; its posterior adds the item's recorded plays and impressions without a play:
//
//   theta ~ Beta(n0 p0 + plays, n0 (1 - p0) + max(impressions - plays, 0))
//
// The greedy list's items keep their calibrated probabilities. An explored item takes the place of
// the lowest greedy item still in the list only when its draw beats that item's probability, so
// `slots` is a most: a list full of strong items stays as it is, and an item whose plays fall short
// of its prior is drawn low and drops out.
//
// Plain arrays; no LibTorch, no store.
#pragma once

#include <cstddef>
#include <cstdint>
#include <random>
#include <vector>

namespace mosaic::fusion {

// P(played | score) = 1 / (1 + exp(-(slope * score + intercept))): Platt scaling of a model's scores.
struct PlayCalibration {
  double slope = 1.0;
  double intercept = 0.0;
  double Probability(double score) const;  ///< in (0, 1)
};

// Fits Platt scaling by Newton's method on scores of played pairs (label 1) and of random unplayed
// pairs (label 0), then moves the intercept from the sample's share of played pairs to `base_rate`
// (the share of all user-item pairs that are played), as for any case-control sample. Scores are
// standardised for the fit. With either list empty, or scores all equal, the fit is a constant: every
// score gets base_rate (clamped into (0, 1)).
PlayCalibration FitPlayCalibration(const std::vector<float>& played, const std::vector<float>& unplayed,
                                   double base_rate);

struct ExploreSettings {
  double prior_strength = 2.0;  ///< n0: impressions the model's prior is worth (weak: a new item gets a chance)
};

// An item that may be explored.
struct ExploreCandidate {
  int64_t id = 0;            ///< the caller's handle (a column)
  double prior = 0.0;        ///< p0: the calibrated probability of a play from the model's score
  uint64_t impressions = 0;  ///< times shown so far
  uint64_t plays = 0;        ///< plays recorded so far
};

// The mean of the candidate's posterior: (n0 p0 + plays) / (n0 + max(impressions, plays)).
double PosteriorMean(const ExploreCandidate& candidate, const ExploreSettings& settings);

// Keeps the `most` candidates with the best posterior means (all when there are no more), so that a
// query's draws cost a bounded time however many items are new. Order is not kept.
void KeepMostPromising(size_t most, const ExploreSettings& settings, std::vector<ExploreCandidate>* candidates);

// One draw from the candidate's posterior (see the top of this file). `rng` advances.
double DrawPlayProbability(const ExploreCandidate& candidate, const ExploreSettings& settings, std::mt19937_64* rng);

// The place of one entry of a merged list.
struct ListEntry {
  bool explored = false;  ///< taken from the candidates (else from the greedy list)
  size_t index = 0;       ///< into the greedy list, or into the candidates
  double value = 0.0;     ///< the greedy item's probability, or the explored item's draw
};

// Draws every candidate once and merges the best `slots` draws into `greedy` (calibrated
// probabilities, best first; the list's length is kept): the best draw replaces the last greedy item
// if it beats it, the second best the one before it, and so on, stopping at the first draw that does
// not. The result is ordered by value. slots = 0 or no candidates: exactly the greedy list.
std::vector<ListEntry> MergeExplored(const std::vector<double>& greedy, const std::vector<ExploreCandidate>& candidates,
                                     size_t slots, const ExploreSettings& settings, std::mt19937_64* rng);

}  // namespace mosaic::fusion
