// The current model version as queries use it, shared by the CLI query commands (which load it once
// per command) and `mosaic serve` (which keeps it and grows it as items arrive).
//
// Item "columns" are the version's item rows, then the items placed after it (by import, ingest or
// POST /items, or in memory at load for items that were written but never placed, e.g. after a
// crash between the item's batch and its placement's). Columns are scored through ItemIndexes
// (exact, or HNSW with exact re-scoring when the version carries a graph).
//
// Thread safety: Run may run on many threads at once, beside one thread calling Place /
// MarkInteracted.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "fusion/explore.h"
#include "fusion/fold_in.h"
#include "fusion/item_index.h"
#include "fusion/kgat.h"
#include "jobs/service/explain.h"
#include "jobs/service/exposure.h"
#include "jobs/service/placement.h"
#include "jobs/service/query.h"
#include "jobs/service/version.h"
#include "store/store.h"

namespace mosaic::jobs::service {

class ServingModel {
 public:
  // Loads the current version from `view`, with the items placed for it; items created after its
  // snapshot and not placed are placed in memory. NotFound before the first rebuild, Corruption for
  // damaged stored records (an HNSW graph among them).
  static Status Load(const store::ReadView& view, std::unique_ptr<ServingModel>* out);
  ~ServingModel();

  uint64_t version() const { return m_.version; }
  int64_t num_items() const { return items_->size(); }  ///< columns, placed ones included
  int64_t num_users() const { return m_.num_users(); }
  int64_t num_placed() const { return items_->size() - m_.num_items(); }
  bool HasColumn(store::NodeId item) const;

  // Representations of new items (not columns yet) from their content and edges in `view`, added as
  // cold columns. Items already columns, and nodes that are not items, are skipped. *placed
  // (optional) receives what was placed, for the caller to persist.
  Status Place(const store::ReadView& view, const std::vector<store::NodeId>& items, std::vector<Placement>* placed);

  // Serve users as the version has them (no fold-in of users who arrived since, nor of new plays): the
  // static policy comparisons measure against. Off by default.
  void set_frozen_users(bool frozen) { frozen_users_ = frozen; }
  // How exploration weighs the model's prior (fusion::ExploreSettings); set before serving.
  void set_explore_settings(const fusion::ExploreSettings& settings) { explore_settings_ = settings; }

  // The given items now have interactions (plays at `timestamps`, seconds, parallel to `items`; now
  // when empty or 0): they leave the cold set, and count in the recent popularity.
  void MarkInteracted(const std::vector<store::NodeId>& items, const std::vector<int64_t>& timestamps = {});

  // Answers `query`; `view` supplies names and edges. A user with plays but no row in the version
  // (they arrived after it) is folded in from those plays (fusion/fold_in.h); a user with a row who
  // played new items since has their vector moved by them; a user with no plays at all gets the items
  // most played lately (result->personalised false). InvalidArgument for bad arguments
  // (Query::Validate), NotFound for a user or item the store does not know, or an item the version
  // neither has nor placed. With query.explore > 0 and `exposure`, up to that many positions of a
  // personalised list go to items the version has no plays of, by Thompson sampling over their
  // exposure (fusion/explore.h); without `exposure` the list is the greedy one.
  Status Run(const store::ReadView& view, const Query& query, QueryResult* result,
             const ExposureBoard* exposure = nullptr);

 private:
  ServingModel() = default;
  Status LoadColumns(const store::ReadView& view);
  Status AddColumns(const std::vector<store::NodeId>& items, const at::Tensor& reps, bool cold);
  std::vector<int64_t> ColdColumns() const;
  int64_t ColumnOf(store::NodeId item) const;  ///< -1 when not a published column
  bool IsColdColumn(int64_t column) const;     ///< placed since the version, or without plays in it

  // What SearchForUser learnt of the user besides the list.
  struct UserSearch {
    std::unordered_map<store::NodeId, double> plays;  ///< their items and play counts
    std::vector<int64_t> seen;                        ///< the columns of those items, sorted
    std::vector<float> vector;                        ///< the query vector (empty when not personalised)
    bool from_history = false;                        ///< folded in from their plays (no row in the version)
    size_t since_version = 0;                         ///< items played since the version, folded in
    bool personalised = true;                         ///< false: the popular list
  };
  // The searches behind Run, each filling *top with columns (users for audience) and scores.
  // A user the version was not trained with is folded in from their plays; a user it was trained
  // with moves by the plays of new items since; a user with no plays and no row gets the popular list.
  Status SearchForUser(const store::ReadView& view, const Query& query, store::NodeId user, UserSearch* found,
                       fusion::TopK* top);
  // Gives up to query.explore positions of *top to candidates drawn by Thompson sampling; marks
  // them in *explored (parallel to top->ids) and says why in *why (for --explain).
  Status Explore(const store::ReadView& view, const Query& query, const UserSearch& user, const ExposureBoard& exposure,
                 fusion::TopK* top, std::vector<char>* explored, std::vector<std::string>* why);
  // The calibration of scores to probabilities of a play, fitted on the version's history at first use.
  Status EnsureCalibration(const store::ReadView& view);
  // The k columns (among `allowed` when given) played most lately, by RecentPopularity; ties (cold
  // items have no plays) newest column first. Scores relative to the most played column's.
  Status SearchPopular(const store::ReadView& view, size_t k, const std::vector<int64_t>* allowed, fusion::TopK* top);
  // Counts every stored play into popularity_ the first time it is needed.
  Status EnsurePopularity(const store::ReadView& view);
  // A play's weight in popularity_: 2^((t - popularity_epoch_) / half-life), t now when 0.
  // The fold-in of a user who played the items of `columns`.
  std::vector<float> FoldIn(const std::vector<int64_t>& columns) const;
  // Moves trained user vector *q by the difference between the fold-ins of `now` and `before`.
  void FoldInNewPlays(const std::vector<int64_t>& before, const std::vector<int64_t>& now, std::vector<float>* q) const;
  Status SearchForItem(const Query& query, int64_t column, fusion::TopK* top);
  Status AddReasons(const store::ReadView& view, const Query& query, store::NodeId subject, QueryResult* result);
  // The second version's reasons: for recommend, the user's plays that add most to each result (their
  // item-item and content terms); for similar, how close the two items are in each part; and, for
  // items placed by content, what placed them.
  Status AddSecondVersionReasons(const store::ReadView& view, const Query& query, store::NodeId subject,
                                 const UserSearch& user, QueryResult* result);
  // The second version's projection rows of `columns` (fusion::SecondVersion::User's input).
  std::vector<float> ProjectionRows(const std::vector<int64_t>& columns) const;

  LoadedModel m_;
  std::unique_ptr<fusion::Kgat> kgat_;        ///< for placement and explanations
  std::mutex kgat_mu_;                        ///< one forward pass at a time; guards the three below
  // Explanations' layer-0 rows: the version's, then the placed items' as they come (appended in place,
  // the buffer grown by half when full), and the placed items' rows in it.
  at::Tensor explain_layer0_;
  int64_t explain_layer0_rows_ = 0;
  std::unordered_map<store::NodeId, int64_t> explain_extra_rows_;
  std::unique_ptr<fusion::ItemIndex> items_;  ///< item columns
  std::unique_ptr<fusion::ItemIndex> normed_; ///< the same, L2-normalised (similar)
  std::unique_ptr<fusion::ItemIndex> users_;  ///< user rows (audience)
  std::unique_ptr<fusion::UserFoldIn> fold_in_;  ///< users who arrived after the version, from their plays
  bool frozen_users_ = false;                 ///< set_frozen_users
  fusion::ExploreSettings explore_settings_;  ///< set_explore_settings

  mutable std::mutex meta_mu_;                ///< guards the members below
  std::vector<store::NodeId> columns_;        ///< column -> store id
  std::unordered_map<store::NodeId, int64_t> column_of_;
  std::vector<char> cold_;                    ///< column -> no interactions
  std::vector<float> placed_layer0_;          ///< layer-0 part of placed columns' representations

  std::mutex popularity_mu_;                  ///< guards the members below
  bool popularity_ready_ = false;             ///< EnsurePopularity ran
  int64_t popularity_epoch_ = 0;              ///< the latest play's time when counted (seconds)
  std::vector<double> popularity_;            ///< column -> plays, each weighted by its recency
  double PlayWeight(int64_t timestamp) const;

  std::mutex calibration_mu_;                 ///< guards the two below
  bool calibrated_ = false;                   ///< EnsureCalibration ran
  fusion::PlayCalibration calibration_;       ///< scores to probabilities of a play
};

}  // namespace mosaic::jobs::service
