// Catalogue items: an item's node, its descriptive attributes and its knowledge-graph links
// (artist, genre, tags, director...), written together into one batch. Shared by `import`
// (catalogue files) and `ingest` (media files).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "store/status.h"
#include "store/store.h"

namespace mosaic::graph {

struct CatalogueItem {
  std::string id;              ///< external item key
  std::string label;           ///< display title; empty keeps the stored one
  nlohmann::json attributes = nlohmann::json::object();  ///< title, description, kind, year, ...
  std::vector<std::pair<std::string, std::string>> links;  ///< (relation, entity value), e.g. ("genre", "Jazz")
};

// Upserts the item node with its label and attributes, creates the entities its links name
// ("<relation>:<normalised value>", labelled with the value) and adds the links as triples.
// On success stores the item's node id in *id.
Status WriteCatalogueItem(store::Batch* batch, const CatalogueItem& item, store::NodeId* id);

// The entity (entity, key), created with `label` when new; an existing entity keeps its label.
Status UpsertEntity(store::Batch* batch, const std::string& key, const std::string& label, store::NodeId* id);

// Finds the item whose key is `text`, else the one whose title is `text` (case- and
// space-insensitive, as NormalizeKey). Returns NotFound when none matches, InvalidArgument (listing
// their keys) when several items share that title.
Status FindItemByKeyOrTitle(const store::ReadView& view, const std::string& text, store::NodeId* id);

// The items whose node ids are at least `first` (nodes created after a view whose NodeIdLimit was
// `first`), in id order.
Status ItemsCreatedSince(const store::ReadView& view, store::NodeId first, std::vector<store::NodeId>* items);

}  // namespace mosaic::graph
