// The demo catalogue, embedded in the binary so that `mosaic demo` runs from anywhere.
// Generated from jobs/cli/demo/ at build time (see jobs/CMakeLists.txt).
#pragma once

namespace mosaic::jobs::demo_data {
extern const char kCatalogue[];      ///< jobs/cli/demo/catalogue.jsonl
extern const char kKnowledgeGraph[]; ///< jobs/cli/demo/kg.tsv
extern const char kInteractions[];   ///< jobs/cli/demo/interactions.tsv
}  // namespace mosaic::jobs::demo_data
