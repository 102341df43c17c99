// ModelError: an exception of encoders/. Inside UseLite's weight loading it carries the status that
// LoadWeights returns (a missing or misshapen tensor); it leaves encoders/ only for a broken
// precondition: input UseLite::forward cannot take, text too long for the tokenizer, an ICU without
// NFKC. The loaders (LoadTextModel, TextEncoder::Load, Tokenizer::Load, LoadTfjsWeights, UseLite's
// LoadWeights) return a Status instead.
#pragma once

#include <stdexcept>
#include <string>
#include <utility>

#include "store/status.h"

namespace mosaic::encoders {

class ModelError : public std::runtime_error {
 public:
  // A damaged model (Corruption) unless `status` says otherwise (NotFound for a missing file...).
  explicit ModelError(const std::string& what) : ModelError(Status::Corruption(what)) {}
  explicit ModelError(Status status) : std::runtime_error(status.message()), status_(std::move(status)) {}
  const Status& status() const { return status_; }  ///< what the public loaders return for it

 private:
  Status status_;
};

}  // namespace mosaic::encoders
