// The demo catalogue, embedded in the binary so that `mosaic demo` runs from anywhere.
// Generated from jobs/demo/ at build time (see jobs/CMakeLists.txt).
#pragma once

namespace mosaic::jobs::demo_data {
extern const char kCatalogue[];      ///< jobs/demo/catalogue.jsonl
extern const char kKnowledgeGraph[]; ///< jobs/demo/kg.tsv
extern const char kInteractions[];   ///< jobs/demo/interactions.tsv
}  // namespace mosaic::jobs::demo_data
