#include "encoders/text_model.h"

#include <mutex>
#include <string>

#include "store/shared_library.h"

namespace mosaic::encoders {

namespace {

using NewTextModel = TextModel* (*)(const char*, const char*, Status*);

// The plugin's entry point, from the library opened on first use.
Status Plugin(NewTextModel* entry) {
  static void* found = nullptr;
  static Status opened;
  static std::once_flag once;
  std::call_once(once, [] {
    opened = OpenLibrarySymbol("MOSAIC_ENCODERS_LIBRARY", MOSAIC_ENCODERS_LIBRARY, "text encoder library",
                               "mosaic_encoders_new_text_model", &found);
  });
  MOSAIC_RETURN_IF_ERROR(opened);
  *entry = reinterpret_cast<NewTextModel>(found);
  return Status::OK();
}

}  // namespace

Status LoadTextModel(const std::string& model_dir, const std::string& device, std::unique_ptr<TextModel>* model) {
  NewTextModel entry = nullptr;
  MOSAIC_RETURN_IF_ERROR(Plugin(&entry));
  Status s;
  TextModel* loaded = entry(model_dir.c_str(), device.c_str(), &s);
  if (!loaded) return s;
  model->reset(loaded);
  return Status::OK();
}

}  // namespace mosaic::encoders
