// Explanations: the paths through the graph that tie a result to the query, ranked by the model's
// attention (KGAT's pi on the layer-0 representations, softmax over each head's full edge list),
// worded for people ("shares artist Claude Debussy with Clair de lune, which you played 48 times").
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>

#include <string>
#include <unordered_map>
#include <vector>

#include "fusion/kgat.h"
#include "jobs/service/query.h"
#include "jobs/service/version.h"
#include "store/store.h"

namespace mosaic::jobs::service {

struct ExplainWalks;  // the walks already made from each source, shared by one query's results (explain.cc)

// What explaining needs: the store for edges and names, the version and its module, and the layer-0
// rows (the version's rows, then extra rows for items placed after it, listed in `extra_rows`).
struct ExplainContext {
  const store::ReadView* view = nullptr;
  const LoadedModel* model = nullptr;
  fusion::Kgat* kgat = nullptr;
  at::Tensor layer0;                                      ///< [rows, dim]
  const std::unordered_map<store::NodeId, int64_t>* extra_rows = nullptr;  ///< placed items -> row in layer0
  std::shared_ptr<ExplainWalks> walks;                    ///< made by Explain on first use
};

// The explanation texts of one result, best first (at most `limit`), for a query of `kind` about
// `subject` (the user for recommend, the item for audience and similar):
//  * recommend: paths from the result item to items the user played;
//  * audience: the same paths, worded from the user's side (the result is the user);
//  * similar: paths from the subject item to the result item.
Status Explain(ExplainContext& ctx, QueryKind kind, store::NodeId subject, store::NodeId result, size_t limit,
               std::vector<std::string>* texts);

// A relation name for people: the last dotted part, underscores as spaces ("music.artist.genre" -> "genre").
std::string RelationWords(const std::string& name);

}  // namespace mosaic::jobs::service
