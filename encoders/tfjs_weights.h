// Reads the weights of a TensorFlow.js model: the "weightsManifest" of model.json and its binary
// shards, into CPU tensors by name. Only what Mosaic's models use is read: unquantized float32,
// int32 and bool tensors (TF.js's "quantization" entries are refused, not dequantized).
#pragma once

#include <ATen/Tensor.h>

#include <map>
#include <string>

#include "store/status.h"

namespace mosaic::encoders {

// Loads every tensor of `model_dir`/model.json. The manifest is a list of groups, each with
// "paths" (shard files, relative to model_dir) and "weights" ([{name, shape, dtype}]); a group's
// tensors lie back to back, in manifest order, in the concatenation of its shards, little-endian
// (float32 and int32: 4 bytes a value; bool: 1 byte). The tensors are contiguous and own their
// memory. On success stores them in *weights, by name, and returns OK. On error leaves *weights
// as it was and returns a status naming the file or tensor: NotFound when model.json or a shard
// is missing, IOError when one cannot be read, Corruption when model.json is malformed, the
// shards of a group hold fewer or more bytes than its tensors need, a tensor is quantized, has
// an unknown dtype or a bad shape, or a name repeats.
Status LoadTfjsWeights(const std::string& model_dir, std::map<std::string, at::Tensor>* weights);

}  // namespace mosaic::encoders
