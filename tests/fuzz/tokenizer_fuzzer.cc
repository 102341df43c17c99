// The USE-lite tokenizer on arbitrary bytes. The vocabulary is loaded once from
// $MOSAIC_MODEL_DIR/vocab.json (default: the project's .cache/models/use-lite, which scripts/fetch-model
// fills); without it every input is skipped (scripts/fuzz does not run this target then).
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

#include "encoders/tokenizer.h"
#include "fuzz_check.h"

namespace {

std::unique_ptr<mosaic::encoders::Tokenizer> g_tokenizer;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("MOSAIC_MODEL_DIR");
  const std::string path = std::string(dir && *dir ? dir : MOSAIC_DEFAULT_MODEL_DIR) + "/vocab.json";
  const mosaic::Status s = mosaic::encoders::Tokenizer::Load(path, &g_tokenizer);
  if (!s.ok()) std::fprintf(stderr, "tokenizer fuzzer: no vocabulary, every input skipped: %s\n", s.ToString().c_str());
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (!g_tokenizer) return 0;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  const std::vector<int64_t> ids = g_tokenizer->Encode(text);
  FUZZ_CHECK(size > 0 || ids.empty(), "the empty text has no ids");
  const auto vocab = static_cast<int64_t>(g_tokenizer->vocab_size());
  for (size_t i = 0; i < ids.size(); ++i) {
    FUZZ_CHECK(ids[i] >= 0 && ids[i] < vocab, "an id is a vocabulary index");
    FUZZ_CHECK(ids[i] == mosaic::encoders::kUnknownId || ids[i] >= mosaic::encoders::Tokenizer::kReserved,
               "reserved entries are never matched");
    FUZZ_CHECK(i == 0 || ids[i] != mosaic::encoders::kUnknownId || ids[i - 1] != mosaic::encoders::kUnknownId,
               "runs of unknowns are merged");
  }
  return 0;
}
