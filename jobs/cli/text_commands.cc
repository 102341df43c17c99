// The text encoder in the jobs: loading it, the hook that keeps items' text features current,
// and the `embed` and `similar-text` commands.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>

#include "encoders/item_text.h"
#include "encoders/text_model.h"
#include "graph/text_features.h"
#include "jobs/cli/commands.h"
#include "jobs/cli/progress.h"
#include "jobs/service/browse.h"
#include "modalities/registry.h"
#include "store/store.h"

namespace mosaic::jobs {

std::string DefaultModelDir() {
  const char* env = std::getenv("MOSAIC_MODEL_DIR");
  if (env && *env) return env;
  return MOSAIC_DEFAULT_MODEL_DIR;
}

Status LoadTextModel(const Context& ctx, std::shared_ptr<const encoders::TextModel>* encoder) {
  std::unique_ptr<encoders::TextModel> model;
  MOSAIC_RETURN_IF_ERROR(encoders::LoadTextModel(ctx.model_dir, ctx.device, &model).WithContext("text model: "));
  *encoder = std::move(model);
  return Status::OK();
}

graph::TextFeatureHook MakeTextHook(std::shared_ptr<const encoders::TextModel> encoder) {
  graph::TextFeatureHook hook;
  hook.modality = modalities::kTextModality.name;
  hook.extractor = modalities::kTextModality.extractor;
  hook.version = modalities::kTextModality.version;
  hook.compose = [](const graph::ItemDescription& d) {
    encoders::ItemText text;
    text.title = d.title;
    text.description = d.description;
    for (const auto& [relation, label] : d.links) {
      if (relation == "tag") {
        text.tags.push_back(label);
      } else if (relation == "genre") {
        text.genres.push_back(label);
      } else {
        text.people.push_back(label);  // artist, director, album, studio...
      }
    }
    return encoders::ComposeItemText(text);
  };
  hook.embed = [encoder](const std::vector<std::string>& texts, std::vector<std::vector<float>>* out) {
    try {
      *out = encoder->Encode(texts);
    } catch (const std::exception& e) {
      return Status::IOError(std::string("text encoder: ") + e.what());
    }
    return Status::OK();
  };
  return hook;
}

Status LoadTextHook(const Context& ctx, std::shared_ptr<const encoders::TextModel>* encoder,
                    std::unique_ptr<graph::TextFeatureHook>* hook) {
  if (ctx.no_text) return Status::OK();
  MOSAIC_RETURN_IF_ERROR(LoadTextModel(ctx, encoder));
  *hook = std::make_unique<graph::TextFeatureHook>(MakeTextHook(*encoder));
  return Status::OK();
}

Status RunEmbed(const Context& ctx, const std::vector<std::string>& texts) {
  std::shared_ptr<const encoders::TextModel> encoder;
  MOSAIC_RETURN_IF_ERROR(LoadTextModel(ctx, &encoder));
  std::vector<std::vector<float>> vectors;
  try {
    vectors = encoder->Encode(texts);
  } catch (const std::exception& e) {
    return Status::IOError(std::string("text encoder: ") + e.what());
  }
  nlohmann::json out = nlohmann::json::array();
  for (size_t i = 0; i < texts.size(); ++i) {
    const std::vector<int64_t> ids = encoder->Tokenize(texts[i]);
    if (ctx.json) {
      out.push_back({{"text", texts[i]}, {"ids", ids}, {"embedding", vectors[i]}});
      continue;
    }
    std::printf("\"%s\"  %zu tokens, %zu dims:", texts[i].c_str(), ids.size(), vectors[i].size());
    for (size_t d = 0; d < std::min<size_t>(8, vectors[i].size()); ++d) std::printf(" %+.5f", vectors[i][d]);
    std::printf(" ...\n");
  }
  if (ctx.json) std::printf("%s\n", out.dump().c_str());
  return Status::OK();
}

Status CollectSimilarText(const store::ReadView& view, const encoders::TextModel& encoder, const std::string& query,
                          size_t k, nlohmann::json* result) {
  if (k == 0) return Status::InvalidArgument("-k must be at least 1");
  std::vector<float> q;
  try {
    q = encoder.Encode({query}).front();
  } catch (const std::exception& e) {
    return Status::IOError(std::string("text encoder: ") + e.what());
  }
  std::vector<std::pair<float, store::NodeId>> scored;
  size_t other_model = 0;
  MOSAIC_RETURN_IF_ERROR(service::ScoreItemsByText(view, q, &scored, &other_model));
  if (scored.empty()) {
    const modalities::ModalityInfo& text = modalities::kTextModality;
    return Status::NotFound("no item in this store has a text embedding from " + std::string(text.extractor) + " v" +
                            std::to_string(text.version) +
                            " (import or ingest items with the text model installed)");
  }
  const size_t shown = std::min(k, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + long(shown), scored.end(),
                    [](const auto& a, const auto& b) { return a.first != b.first ? a.first > b.first : a.second < b.second; });
  nlohmann::json results = nlohmann::json::array();
  for (size_t i = 0; i < shown; ++i) {
    store::NodeRecord r;
    MOSAIC_RETURN_IF_ERROR(view.GetNode(scored[i].second, &r));
    results.push_back({{"rank", i + 1}, {"score", scored[i].first}, {"item", r.key}, {"title", r.label}});
  }
  *result = {{"query", query}, {"results", results}, {"items_scored", scored.size()}, {"other_model", other_model}};
  return Status::OK();
}

void PrintSimilarText(const nlohmann::json& r) {
  const modalities::ModalityInfo& text = modalities::kTextModality;
  std::printf("items most like \"%s\" by text (%s v%u, %s items scored):\n", r["query"].get<std::string>().c_str(),
              text.extractor, text.version, WithThousands(r["items_scored"].get<uint64_t>()).c_str());
  for (const auto& x : r["results"]) {
    std::printf("%3d. %.3f  %s  [item %s]\n", x["rank"].get<int>(), x["score"].get<float>(),
                x["title"].get<std::string>().c_str(), ShortKey(x["item"]).c_str());
  }
  if (r["other_model"].get<size_t>() > 0) {
    std::printf("(%zu items have text vectors from another model version: re-import them)\n", r["other_model"].get<size_t>());
  }
}

Status RunSimilarText(const Context& ctx, const std::string& query, size_t k) {
  std::shared_ptr<const encoders::TextModel> encoder;
  MOSAIC_RETURN_IF_ERROR(LoadTextModel(ctx, &encoder));
  std::unique_ptr<store::Store> store;
  MOSAIC_RETURN_IF_ERROR(OpenStore(ctx, false, /*read_only=*/true, &store));
  nlohmann::json result;
  MOSAIC_RETURN_IF_ERROR(CollectSimilarText(*store->NewReadView(), *encoder, query, k, &result));
  if (ctx.json) {
    std::printf("%s\n", result.dump().c_str());
  } else {
    PrintSimilarText(result);
  }
  return Status::OK();
}

}  // namespace mosaic::jobs
