// Text features: keeps each item's text embedding in step with what the store says about the
// item (title, description, labelled KG neighbours such as tags, artist, genre). The encoder
// itself lives in encoders/; jobs/ hands it in as a TextFeatureHook, so graph/ stays free of it.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace mosaic::graph {

// What a text encoder gets to see of an item.
struct ItemDescription {
  std::string title;        ///< the node's label
  std::string description;  ///< attributes["description"], if any
  std::vector<std::pair<std::string, std::string>> links;  ///< (relation, label) of labelled out-neighbours
};

struct TextFeatureHook {
  std::string modality;   ///< feature name the vectors are stored under (jobs/ sets it from modalities/registry.h)
  std::string extractor;  ///< model name stored with the vectors
  uint32_t version = 0;   ///< model version stored with the vectors
  std::function<std::string(const ItemDescription&)> compose;  ///< the text to encode
  std::function<Status(const std::vector<std::string>&, std::vector<std::vector<float>>*)> embed;  ///< batch encoder
};

// Describes item `id` as `batch` sees it (pending writes included).
Status DescribeItem(store::Batch* batch, store::NodeId id, ItemDescription* description);

// For each item, composes its text and, unless the stored text feature was made from the same
// text by the same model version, encodes it (all in one call to hook.embed) and puts the
// vector into `batch`. Items with no text at all get none. *encoded counts the vectors written.
Status UpdateTextFeatures(store::Batch* batch, const std::vector<store::NodeId>& items, const TextFeatureHook& hook,
                          size_t* encoded);

}  // namespace mosaic::graph
