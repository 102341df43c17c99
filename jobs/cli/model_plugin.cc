#include "jobs/model_plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>

#include "graph/catalogue.h"
#include "store/store.h"

namespace mosaic::jobs {

const ModelPlugin& LoadModelPlugin() {
  // Opened once and never closed: LibTorch does not support being unloaded.
  static const ModelPlugin* plugin = nullptr;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("MOSAIC_MODEL_JOBS_LIBRARY");
    const std::string path = env && *env ? env : MOSAIC_MODEL_JOBS_LIBRARY;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      failure = "cannot load the model library '" + path + "': " + (why ? why : "unknown error") +
                " (rebuild with scripts/setup, or set MOSAIC_MODEL_JOBS_LIBRARY)";
      return;
    }
    using Entry = const ModelPlugin* (*)();
    auto entry = reinterpret_cast<Entry>(dlsym(handle, "mosaic_model_jobs_plugin"));
    if (!entry) {
      failure = "'" + path + "' has no mosaic_model_jobs_plugin";
      return;
    }
    plugin = entry();
  });
  if (!plugin) throw std::runtime_error(failure);
  return *plugin;
}

Status PlaceCreatedItems(const Context& ctx, store::Store* store, uint32_t first_new, size_t* placed,
                         uint64_t* version) {
  *placed = 0;
  *version = 0;
  auto view = store->NewReadView();
  Status s = view->GetCurrentModel(version);
  if (s.IsNotFound()) {
    *version = 0;
    return Status::OK();
  }
  MOSAIC_RETURN_IF_ERROR(s);
  std::vector<store::NodeId> items;
  MOSAIC_RETURN_IF_ERROR(graph::ItemsCreatedSince(*view, first_new, &items));
  if (items.empty()) return Status::OK();
  return LoadModelPlugin().place_new_items(ctx, store, items, placed);
}

}  // namespace mosaic::jobs
