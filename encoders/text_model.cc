#include "encoders/text_model.h"

#include <dlfcn.h>

#include <cstdlib>
#include <mutex>

#include "encoders/model_error.h"

namespace mosaic::encoders {

namespace {

using NewTextModel = TextModel* (*)(const char*, const char*, std::string*);

// Opens the plugin once; never closed (LibTorch does not support being unloaded).
NewTextModel Plugin() {
  static NewTextModel entry = nullptr;
  static std::string failure;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("MOSAIC_ENCODERS_LIBRARY");
    const std::string path = env && *env ? env : MOSAIC_ENCODERS_LIBRARY;
    void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (!handle) {
      const char* why = dlerror();
      failure = "cannot load the text encoder library '" + path + "': " + (why ? why : "unknown error") +
                " (rebuild with scripts/setup, or set MOSAIC_ENCODERS_LIBRARY)";
      return;
    }
    entry = reinterpret_cast<NewTextModel>(dlsym(handle, "mosaic_encoders_new_text_model"));
    if (!entry) failure = "'" + path + "' has no mosaic_encoders_new_text_model";
  });
  if (!entry) throw ModelError(failure);
  return entry;
}

}  // namespace

std::unique_ptr<TextModel> LoadTextModel(const std::string& model_dir, const std::string& device) {
  std::string error;
  TextModel* model = Plugin()(model_dir.c_str(), device.c_str(), &error);
  if (!model) throw ModelError(error);
  return std::unique_ptr<TextModel>(model);
}

}  // namespace mosaic::encoders
