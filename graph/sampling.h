// Neighbour sampling over the CSR snapshot: the edge lists graph-attention layers propagate over.
// A hub (a popular artist, the genre "Rock") would otherwise give one node tens of thousands of
// edges; each node keeps at most `fanout` of its edges, drawn without replacement.
#pragma once

#include <cstdint>
#include <vector>

#include "graph/csr.h"

namespace mosaic::graph {

struct SampledEdges {
  std::vector<store::NodeId> head;          ///< node whose representation the edge feeds
  std::vector<store::RelationId> relation;  ///< the triple's relation
  std::vector<store::NodeId> tail;          ///< neighbour
  std::vector<uint8_t> reverse;             ///< 1 when the edge walks the stored triple backwards
};

// For every node of `graph`, up to `fanout` of its edges (all of them when it has no more),
// chosen uniformly without replacement by a generator seeded from (seed, node): the same seed
// gives the same edges whatever else changes. Edges are grouped by head, in node order.
SampledEdges SampleNeighbours(const CsrGraph& graph, uint32_t fanout, uint64_t seed);

}  // namespace mosaic::graph
