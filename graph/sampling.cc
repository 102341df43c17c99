#include "graph/sampling.h"

namespace mosaic::graph {

namespace {

// SplitMix64: a small, well-mixed generator whose output is the same on every platform
// (std::uniform_int_distribution is not).
struct SplitMix64 {
  uint64_t state;
  uint64_t operator()() {
    uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in [0, n) by rejection, without modulo bias.
  uint64_t Below(uint64_t n) {
    const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
    uint64_t x;
    do {
      x = (*this)();
    } while (x >= limit);
    return x % n;
  }
};

}  // namespace

SampledEdges SampleNeighbours(const CsrGraph& graph, uint32_t fanout, uint64_t seed) {
  SampledEdges out;
  std::vector<std::pair<store::NodeId, CsrEdge>> edges;
  for (store::NodeId node = 0; node < graph.num_nodes(); ++node) {
    edges.clear();
    graph.ForEachNeighbor(node, [&](store::NodeId to, const CsrEdge& e) { edges.emplace_back(to, e); });
    size_t keep = edges.size();
    if (fanout > 0 && edges.size() > fanout) {
      // Partial Fisher-Yates: the first `fanout` positions become a uniform sample.
      SplitMix64 rng{seed * 0x9E3779B97F4A7C15ull + node};
      for (size_t i = 0; i < fanout; ++i) std::swap(edges[i], edges[i + rng.Below(edges.size() - i)]);
      keep = fanout;
    }
    for (size_t i = 0; i < keep; ++i) {
      out.head.push_back(node);
      out.relation.push_back(edges[i].second.relation);
      out.tail.push_back(edges[i].first);
      out.reverse.push_back(edges[i].second.reverse ? 1 : 0);
    }
  }
  return out;
}

}  // namespace mosaic::graph
