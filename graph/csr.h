// CsrGraph: an immutable compressed-sparse-row snapshot of the collaborative knowledge graph
// (Boost.Graph's compressed_sparse_row_graph), for traversal. Every
// stored triple appears twice: as h -> t and, flagged `reverse`, as t -> h.
#pragma once

#include <boost/graph/compressed_sparse_row_graph.hpp>
#include <boost/range/iterator_range.hpp>
#include <cstdint>
#include <set>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace mosaic::graph {

struct CsrEdge {
  store::RelationId relation = 0;  ///< relation of the stored triple
  bool reverse = false;            ///< true when this edge walks the triple from tail to head
  float weight = 1.0f;             ///< the triple's weight
};

class CsrGraph {
 public:
  using Graph = boost::compressed_sparse_row_graph<boost::directedS, boost::no_property, CsrEdge,
                                                   boost::no_property, store::NodeId, uint64_t>;

  // Builds the snapshot of every edge visible in `view`. Returns the store's error, if any.
  static Status Build(const store::ReadView& view, CsrGraph* out);

  store::NodeId num_nodes() const { return store::NodeId(boost::num_vertices(graph_)); }
  uint64_t num_edges() const { return boost::num_edges(graph_); }
  const Graph& graph() const { return graph_; }

  // Calls fn(neighbour, edge) for each edge leaving `node` in both directions.
  template <typename Fn>
  void ForEachNeighbor(store::NodeId node, Fn&& fn) const {
    if (node >= num_nodes()) return;
    for (auto e : boost::make_iterator_range(boost::out_edges(node, graph_))) {
      fn(store::NodeId(boost::target(e, graph_)), graph_[e]);
    }
  }

  uint64_t Degree(store::NodeId node) const {
    return node < num_nodes() ? boost::out_degree(node, graph_) : 0;
  }

 private:
  Graph graph_;
};

// One node reached by a breadth-first walk.
struct Reached {
  store::NodeId node = 0;       ///< the node reached
  int hops = 0;                 ///< shortest distance from the start
  store::NodeId via = 0;        ///< the node it was first reached from
  CsrEdge edge;                 ///< the edge that reached it
  uint64_t paths = 0;           ///< number of edges from the previous hop into this node
};

struct NeighborhoodOptions {
  int hops = 1;                                    ///< walk this far
  std::set<store::RelationId> relations;           ///< walk only these; empty = all but `excluded`
  std::set<store::RelationId> excluded;            ///< never walk these (when `relations` is empty)
};

// Nodes within `options.hops` of `start` (start excluded), ordered by hops, then by paths
// (descending), then by id.
std::vector<Reached> Neighborhood(const CsrGraph& graph, store::NodeId start, const NeighborhoodOptions& options);

}  // namespace mosaic::graph
