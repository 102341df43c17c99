// One symbol of a shared library opened with dlopen, for the parts of Mosaic kept out of the `mosaic`
// binary so that commands that do not need them never pay LibTorch's load time (encoders/ opens the
// text encoder this way, jobs/ the model commands). Standard library and libdl only, like status.h,
// so that every folder may use it (CMake target mosaic_status).
#pragma once

#include <dlfcn.h>

#include <cstdlib>
#include <string>

#include "store/status.h"

namespace mosaic {

// Opens the library at $`path_variable` (when set and not empty) or else `default_path`, and stores
// the address of `symbol` in *address. The library is never closed: LibTorch does not support being
// unloaded. IOError naming the library (`what`), the loader's message and `path_variable` when it
// cannot be opened or lacks the symbol. Callers open each library once (std::call_once).
inline Status OpenLibrarySymbol(const char* path_variable, const std::string& default_path, const std::string& what,
                                const char* symbol, void** address) {
  const char* env = std::getenv(path_variable);
  const std::string path = env && *env ? env : default_path;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (!handle) {
    const char* why = dlerror();
    return Status::IOError("cannot load the " + what + " '" + path + "': " + (why ? why : "unknown error") +
                           " (rebuild with scripts/setup, or set " + path_variable + ")");
  }
  *address = dlsym(handle, symbol);
  if (!*address) return Status::IOError("'" + path + "' has no " + symbol);
  return Status::OK();
}

}  // namespace mosaic
