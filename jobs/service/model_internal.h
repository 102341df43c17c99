// Internals of libmosaic_model_jobs.so (the ModelPlugin table of jobs/model_plugin.h is made of these).
// Nothing outside jobs/model_*.cc, rebuild_command.cc, recommend_commands.cc and explain.cc includes it.
#pragma once

#include <nlohmann/json.hpp>

#include <string>
#include <vector>

#include "fusion/kgat.h"
#include "jobs/model_plugin.h"
#include "jobs/model_version.h"
#include "store/store.h"

namespace mosaic::jobs {

// Opens the existing store of `ctx` (NotFound naming it when there is none).
Status OpenModelStore(const Context& ctx, bool read_only, std::unique_ptr<store::Store>* store);

Status RunRebuild(const Context& ctx, const RebuildArgs& args);

Status RunModelQuery(const Context& ctx, const std::string& query, const QueryArgs& args, nlohmann::json* result);
void PrintModelQuery(const nlohmann::json& result);

Status RunServe(const Context& ctx, const ServeArgs& args);

Status PlaceNewItems(const Context& ctx, store::Store* store, const std::vector<uint32_t>& items, size_t* placed);

// Representations [items.size(), total_dim] of items that are not rows of `model`, from their content
// features and their edges (both directions) to nodes that are rows, by Kgat::InferItems. Edges to
// nodes or relations the model does not know are left out.
Status InferNewItems(const store::ReadView& view, const LoadedModel& model, fusion::Kgat& kgat,
                     const std::vector<store::NodeId>& items, at::Tensor* reps);

// A relation name for people: the last dotted part, underscores as spaces ("music.artist.genre" -> "genre").
std::string RelationWords(const std::string& name);

// The explanation texts of one result, best first (at most `limit`).
//  * recommend: `user` (store id) and `item` (the result): paths from the item to items the user played.
//  * audience: the same paths, worded from the user's side (`user` is the result).
//  * similar: paths from `item` to `other`.
// `layer0` holds the layer-0 rows (the model's rows, then extra rows for placed items listed in
// `extra_rows`).
struct ExplainContext {
  const store::ReadView* view = nullptr;
  const LoadedModel* model = nullptr;
  fusion::Kgat* kgat = nullptr;
  at::Tensor layer0;                                        ///< [rows, dim]
  std::unordered_map<store::NodeId, int64_t> extra_rows;    ///< placed items -> row in layer0
};
Status ExplainRecommend(ExplainContext& ctx, store::NodeId user, store::NodeId item, size_t limit,
                        std::vector<std::string>* texts);
Status ExplainAudience(ExplainContext& ctx, store::NodeId item, store::NodeId user, size_t limit,
                       std::vector<std::string>* texts);
Status ExplainSimilar(ExplainContext& ctx, store::NodeId item, store::NodeId other, size_t limit,
                      std::vector<std::string>* texts);

}  // namespace mosaic::jobs
