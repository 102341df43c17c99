#include "fusion/training_group.h"

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/torch.h>

#include <cstring>
#include <stdexcept>
#include <utility>

namespace mosaic::fusion {

struct TrainingGroup::Impl {
  c10::intrusive_ptr<c10d::TCPStore> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

namespace {

// Runs a collective and waits for it; Gloo's errors (a peer gone, a timeout) become one message.
template <typename Start>
void Wait(const TrainingGroupOptions& o, const char* what, Start start) {
  try {
    start()->wait();
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string("training group (rank ") + std::to_string(o.rank) + " of " +
                             std::to_string(o.world_size) + "): " + what + " failed, a rank has stopped or " +
                             "timed out: " + e.what());
  }
}

}  // namespace

TrainingGroup::TrainingGroup(TrainingGroupOptions options) : impl_(new Impl), options_(std::move(options)) {}
TrainingGroup::~TrainingGroup() = default;

std::shared_ptr<TrainingGroup> TrainingGroup::Join(const TrainingGroupOptions& options) {
  if (options.world_size < 1 || options.rank < 0 || options.rank >= options.world_size) {
    throw std::invalid_argument("training group: rank " + std::to_string(options.rank) + " is not in [0, " +
                                std::to_string(options.world_size) + ")");
  }
  if (options.master_port < 1 || options.master_port > 65535) {
    throw std::invalid_argument("training group: port " + std::to_string(options.master_port) + " is not in [1, 65535]");
  }
  std::shared_ptr<TrainingGroup> g(new TrainingGroup(options));
  const std::string where = options.master_addr + ":" + std::to_string(options.master_port);
  try {
    c10d::TCPStoreOptions store;
    store.port = uint16_t(options.master_port);
    store.isServer = options.rank == 0;
    store.numWorkers = size_t(options.world_size);
    store.waitWorkers = true;
    store.timeout = options.timeout;
    g->impl_->store = c10::make_intrusive<c10d::TCPStore>(options.master_addr, store);
    auto gloo = c10d::ProcessGroupGloo::Options::create(options.timeout);
    // Bind where the rendezvous is reachable from: loopback for a local group, else this host.
    const bool local = options.master_addr == "127.0.0.1" || options.master_addr == "localhost";
    gloo->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1")
                                  : c10d::ProcessGroupGloo::createDefaultDevice());
    g->impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(g->impl_->store, options.rank, options.world_size, gloo);
  } catch (const std::exception& e) {
    throw std::runtime_error("training group: rank " + std::to_string(options.rank) + " could not join " +
                             std::to_string(options.world_size) + " ranks at " + where + ": " + e.what());
  }
  return g;
}

void TrainingGroup::Broadcast(std::vector<at::Tensor>& tensors, int root) {
  for (auto& t : tensors) {
    std::vector<at::Tensor> one{t};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    Wait(options_, "broadcast", [&] { return impl_->group->broadcast(one, o); });
  }
}

int64_t TrainingGroup::AverageGradients(const std::vector<at::Tensor>& parameters) {
  std::vector<at::Tensor> grads;
  grads.reserve(parameters.size());
  for (const auto& p : parameters) {
    const at::Tensor& g = p.grad();
    grads.push_back(g.defined() ? g.detach().to(torch::kCPU).reshape({-1}) : torch::zeros({p.numel()}, p.options().device(torch::kCPU)));
  }
  std::vector<at::Tensor> flat{torch::cat(grads)};
  Wait(options_, "gradient allreduce", [&] { return impl_->group->allreduce(flat); });
  flat[0].div_(double(options_.world_size));
  int64_t offset = 0;
  for (const auto& p : parameters) {
    at::Tensor mean = flat[0].narrow(0, offset, p.numel()).view(p.sizes()).to(p.device());
    offset += p.numel();
    at::Tensor& g = const_cast<at::Tensor&>(p).mutable_grad();
    if (g.defined()) {
      g.copy_(mean);
    } else {
      g = mean.clone();
    }
  }
  const int64_t bytes = flat[0].numel() * int64_t(flat[0].element_size());
  bytes_allreduced_ += bytes;
  return bytes;
}

std::vector<double> TrainingGroup::Sum(const std::vector<double>& values) {
  std::vector<at::Tensor> t{torch::tensor(values, torch::kDouble)};
  Wait(options_, "allreduce", [&] { return impl_->group->allreduce(t); });
  const double* p = t[0].data_ptr<double>();
  return std::vector<double>(p, p + values.size());
}

std::string TrainingGroup::BroadcastBytes(const std::string& bytes) {
  std::vector<at::Tensor> size{torch::tensor({int64_t(bytes.size())}, torch::kLong)};
  Wait(options_, "broadcast", [&] { return impl_->group->broadcast(size); });
  const int64_t n = size[0].item<int64_t>();
  if (n == 0) return {};
  std::vector<at::Tensor> data{torch::zeros({n}, torch::kUInt8)};
  if (rank() == 0 && n > 0) std::memcpy(data[0].data_ptr<uint8_t>(), bytes.data(), size_t(n));
  Wait(options_, "broadcast", [&] { return impl_->group->broadcast(data); });
  return std::string(reinterpret_cast<const char*>(data[0].data_ptr<uint8_t>()), size_t(n));
}

void TrainingGroup::Barrier() {
  Wait(options_, "barrier", [&] { return impl_->group->barrier(); });
}

}  // namespace mosaic::fusion
