#include "jobs/cli/model_plugin.h"

#include <mutex>

#include "store/shared_library.h"
#include "store/store.h"

namespace mosaic::jobs {

Status LoadModelPlugin(const ModelPlugin** out) {
  static void* entry = nullptr;
  static Status opened;
  static std::once_flag once;
  std::call_once(once, [] {
    opened = OpenLibrarySymbol("MOSAIC_MODEL_JOBS_LIBRARY", MOSAIC_MODEL_JOBS_LIBRARY, "model library",
                               "mosaic_model_jobs_plugin", &entry);
  });
  MOSAIC_RETURN_IF_ERROR(opened);
  *out = reinterpret_cast<const ModelPlugin* (*)()>(entry)();
  return Status::OK();
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
