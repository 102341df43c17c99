#include "encoders/text_encoder.h"

#include <dlfcn.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <numeric>
#include <thread>

#include "encoders/tfjs_weights.h"
#include "encoders/tokenizer.h"
#include "encoders/use_lite.h"

namespace mosaic::encoders {
namespace {

namespace fs = std::filesystem;

constexpr const char* kHowToGet = "run scripts/fetch-model (or scripts/setup), or set MOSAIC_MODEL_DIR";

// Threads, once a process. LibTorch (Debian's build) runs its element-wise kernels on an OpenMP
// pool and its matrix products in OpenBLAS, which has a pthread pool of its own; left alone both
// start one thread a core, and on 2 busy cores the OpenMP barriers of every small kernel then wait
// on preempted threads: 200-330 titles/s and 24-48 ms a title, against 900-1000 titles/s and 3-4 ms
// with a single pool (measured on this project's 2-core machines). So by default LibTorch's
// intra-op pool is 1 thread and OpenBLAS (where it is the BLAS) gets every core, which is where the
// FLOPs are. MOSAIC_TORCH_THREADS=N gives LibTorch N threads instead, and OpenBLAS then 1.
void SetThreadsOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    const int cores = std::max(1, int(std::thread::hardware_concurrency()));
    int intra = 1;
    if (const char* env = std::getenv("MOSAIC_TORCH_THREADS"); env && *env) intra = std::clamp(std::atoi(env), 1, 1024);
    at::set_num_threads(intra);
    // Found at run time, so that Mosaic neither links OpenBLAS nor needs it to be the BLAS.
    using SetBlasThreads = void (*)(int);
    if (auto set_blas = reinterpret_cast<SetBlasThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads")))
      set_blas(intra > 1 ? 1 : cores);
  });
}

// The device called `device` ("cpu", "cuda" or "auto").
Status ResolveDevice(const std::string& device, torch::Device* out) {
  if (device == "cpu") {
    *out = torch::kCPU;
  } else if (device == "cuda" || device == "auto") {
    if (!torch::cuda::is_available() && device == "cuda") {
      return Status::InvalidArgument("text encoder: device \"cuda\" asked for, but LibTorch sees no CUDA GPU "
                                     "(this LibTorch may be a CPU-only build); use \"cpu\" or \"auto\"");
    }
    *out = torch::cuda::is_available() ? torch::kCUDA : torch::kCPU;
  } else {
    return Status::InvalidArgument("text encoder: unknown device \"" + device + "\" (cpu, cuda or auto)");
  }
  return Status::OK();
}

}  // namespace

struct TextEncoder::Impl {
  Tokenizer tokenizer;
  UseLite model{nullptr};
  torch::Device device{torch::kCPU};
  std::string device_name;
};

TextEncoder::TextEncoder(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
TextEncoder::~TextEncoder() = default;

Status TextEncoder::Load(const std::string& model_dir, const std::string& device,
                         std::unique_ptr<TextEncoder>* encoder) {
  torch::Device dev = torch::kCPU;
  MOSAIC_RETURN_IF_ERROR(ResolveDevice(device, &dev));
  std::error_code ec;
  if (model_dir.empty()) {
    return Status::InvalidArgument(std::string("text encoder: no model folder given; ") + kHowToGet);
  }
  for (const char* name : {"model.json", "vocab.json"}) {
    const fs::path file = fs::path(model_dir) / name;
    if (!fs::is_regular_file(file, ec)) {
      return Status::NotFound(file.string() + ": missing (the USE-lite text model is not installed there); " +
                              kHowToGet);
    }
  }
  SetThreadsOnce();
  std::unique_ptr<Tokenizer> tokenizer;
  MOSAIC_RETURN_IF_ERROR(Tokenizer::Load((fs::path(model_dir) / "vocab.json").string(), &tokenizer));
  std::map<std::string, at::Tensor> weights;
  Status s = LoadTfjsWeights(model_dir, &weights);
  // A shard gone missing is an incomplete install, like a missing model.json.
  if (s.IsNotFound()) return Status::NotFound(s.message() + "; " + kHowToGet);
  MOSAIC_RETURN_IF_ERROR(s);
  auto impl = std::make_unique<Impl>(Impl{std::move(*tokenizer), UseLite(), dev, dev.is_cuda() ? "cuda" : "cpu"});
  MOSAIC_RETURN_IF_ERROR(impl->model->LoadWeights(weights));
  {
    torch::NoGradGuard no_grad;
    impl->model->eval();
    impl->model->to(dev);
  }
  encoder->reset(new TextEncoder(std::move(impl)));
  return Status::OK();
}

const std::string& TextEncoder::device() const { return impl_->device_name; }

std::vector<int64_t> TextEncoder::Tokenize(std::string_view text) const {
  std::vector<int64_t> ids = impl_->tokenizer.Encode(text);
  if (ids.size() > size_t(kMaxTokens)) ids.resize(kMaxTokens);
  return ids;
}

std::vector<std::vector<float>> TextEncoder::Encode(const std::vector<std::string>& texts, size_t batch_size) const {
  batch_size = std::max<size_t>(batch_size, 1);
  std::vector<std::vector<int64_t>> ids(texts.size());
  for (size_t i = 0; i < texts.size(); ++i) ids[i] = Tokenize(texts[i]);
  std::vector<size_t> order(texts.size());
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return ids[a].size() < ids[b].size(); });

  std::vector<std::vector<float>> out(texts.size());
  torch::NoGradGuard no_grad;
  for (size_t start = 0; start < order.size(); start += batch_size) {
    const size_t end = std::min(order.size(), start + batch_size);
    const int64_t rows = int64_t(end - start);
    // Sorted ascending: the last text of the batch is the longest. At least one column, so that a
    // batch of empty texts is an ordinary all-padding batch.
    const int64_t cols = std::max<int64_t>(1, int64_t(ids[order[end - 1]].size()));
    torch::Tensor batch_ids = torch::zeros({rows, cols}, torch::kLong);
    torch::Tensor mask = torch::zeros({rows, cols}, torch::kBool);
    auto id_acc = batch_ids.accessor<int64_t, 2>();
    auto mask_acc = mask.accessor<bool, 2>();
    for (int64_t r = 0; r < rows; ++r) {
      const std::vector<int64_t>& row = ids[order[start + size_t(r)]];
      for (size_t c = 0; c < row.size(); ++c) {
        id_acc[r][int64_t(c)] = row[c];
        mask_acc[r][int64_t(c)] = true;
      }
    }
    torch::Tensor vectors =
        impl_->model->forward(batch_ids.to(impl_->device), mask.to(impl_->device)).to(torch::kCPU).contiguous();
    const float* data = vectors.data_ptr<float>();
    for (int64_t r = 0; r < rows; ++r)
      out[order[start + size_t(r)]].assign(data + r * kTextDim, data + (r + 1) * kTextDim);
  }
  return out;
}

}  // namespace mosaic::encoders

namespace {

// TextEncoder behind the TextModel interface, for the plugin entry point.
class PluginModel : public mosaic::encoders::TextModel {
 public:
  explicit PluginModel(std::unique_ptr<mosaic::encoders::TextEncoder> encoder) : encoder_(std::move(encoder)) {}
  std::vector<int64_t> Tokenize(std::string_view text) const override { return encoder_->Tokenize(text); }
  std::vector<std::vector<float>> Encode(const std::vector<std::string>& texts, size_t batch_size) const override {
    return encoder_->Encode(texts, batch_size);
  }
  const std::string& device() const override { return encoder_->device(); }

 private:
  std::unique_ptr<mosaic::encoders::TextEncoder> encoder_;
};

}  // namespace

extern "C" __attribute__((visibility("default"))) mosaic::encoders::TextModel* mosaic_encoders_new_text_model(
    const char* model_dir, const char* device, mosaic::Status* status) {
  try {
    std::unique_ptr<mosaic::encoders::TextEncoder> encoder;
    *status = mosaic::encoders::TextEncoder::Load(model_dir, device, &encoder);
    if (status->ok()) return new PluginModel(std::move(encoder));
  } catch (const std::exception& e) {  // LibTorch's own errors (moving to a device...)
    *status = mosaic::Status::Internal(std::string("text encoder: ") + e.what());
  }
  return nullptr;
}
