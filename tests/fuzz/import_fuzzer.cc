// One import format's line parser, without a store: the input is a whole file's text, checked line by
// line by graph::CheckImportText as Import's first pass checks a file. Built once per format, with
// MOSAIC_FUZZ_FORMAT its --format name and MOSAIC_FUZZ_FILE the file name (whose extension picks CSV
// or TSV for the generic interactions format).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

#include "fuzz_check.h"
#include "graph/import.h"

namespace {

mosaic::graph::ImportFormat g_format;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (!mosaic::graph::ParseImportFormat(MOSAIC_FUZZ_FORMAT, &g_format).ok()) {
    std::fprintf(stderr, "import fuzzer: unknown format '%s'\n", MOSAIC_FUZZ_FORMAT);
    std::abort();
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  uint64_t rows = 0;
  const mosaic::Status s = mosaic::graph::CheckImportText(g_format, text, MOSAIC_FUZZ_FILE, &rows);
  if (!s.ok()) {
    FUZZ_CHECK(s.IsInvalidArgument(), "a malformed file is InvalidArgument");
    FUZZ_CHECK(s.message().rfind(std::string(MOSAIC_FUZZ_FILE) + ":", 0) == 0, "the message names the file and line");
    return 0;
  }
  FUZZ_CHECK(rows <= size, "no more rows than bytes");
  return 0;
}
