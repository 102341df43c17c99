#include "jobs/cli/model_plugin.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "store/store.h"

namespace mosaic::jobs {

Status LoadModelPlugin(const ModelPlugin** out) {
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
  *out = plugin;
  return plugin ? Status::OK() : Status::IOError(failure);
}

Status PluginPlacer::Place(store::Store* store, const std::vector<store::NodeId>& items, service::PlaceReport* report) {
  *report = service::PlaceReport();
  uint64_t version = 0;
  Status s = store->NewReadView()->GetCurrentModel(&version);
  if (s.IsNotFound()) return Status::OK();
  MOSAIC_RETURN_IF_ERROR(s);
  const ModelPlugin* plugin = nullptr;
  MOSAIC_RETURN_IF_ERROR(LoadModelPlugin(&plugin));
  return plugin->place(store, items, report);
}

}  // namespace mosaic::jobs
