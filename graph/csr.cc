#include "graph/csr.h"

#include <algorithm>
#include <unordered_map>

namespace mosaic::graph {

Status CsrGraph::Build(const store::ReadView& view, CsrGraph* out) {
  store::NodeId limit = 0;
  MOSAIC_RETURN_IF_ERROR(view.NodeIdLimit(&limit));
  std::vector<std::pair<store::NodeId, store::NodeId>> ends;
  std::vector<CsrEdge> props;
  MOSAIC_RETURN_IF_ERROR(view.ForEachEdge([&](const store::Edge& e) {
    ends.emplace_back(e.src, e.dst);
    props.push_back(CsrEdge{e.relation, false, e.weight});
    ends.emplace_back(e.dst, e.src);
    props.push_back(CsrEdge{e.relation, true, e.weight});
    return true;
  }));
  out->graph_ = Graph(boost::edges_are_unsorted_multi_pass, ends.begin(), ends.end(), props.begin(), limit);
  return Status::OK();
}

std::vector<Reached> Neighborhood(const CsrGraph& graph, store::NodeId start, const NeighborhoodOptions& options) {
  auto walkable = [&](const CsrEdge& e) {
    if (!options.relations.empty()) return options.relations.count(e.relation) > 0;
    return options.excluded.count(e.relation) == 0;
  };
  std::vector<Reached> result;
  std::unordered_map<store::NodeId, size_t> index;  // node -> position in result
  std::vector<store::NodeId> frontier{start};
  for (int hop = 1; hop <= options.hops && !frontier.empty(); ++hop) {
    const size_t first_new = result.size();
    for (store::NodeId from : frontier) {
      graph.ForEachNeighbor(from, [&](store::NodeId to, const CsrEdge& e) {
        if (to == start || !walkable(e)) return;
        auto it = index.find(to);
        if (it == index.end()) {
          index.emplace(to, result.size());
          result.push_back(Reached{to, hop, from, e, 1});
        } else if (result[it->second].hops == hop) {
          ++result[it->second].paths;
        }
      });
    }
    std::sort(result.begin() + first_new, result.end(), [](const Reached& a, const Reached& b) {
      return a.paths != b.paths ? a.paths > b.paths : a.node < b.node;
    });
    frontier.clear();
    for (size_t i = first_new; i < result.size(); ++i) {
      index[result[i].node] = i;
      frontier.push_back(result[i].node);
    }
  }
  return result;
}

}  // namespace mosaic::graph
