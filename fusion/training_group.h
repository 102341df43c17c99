// A group of training processes for data-parallel training over torch.distributed's c10d: a TCPStore
// rendezvous (rank 0 hosts it) and Gloo collectives (CPU tensors; a CUDA LibTorch's Gloo works on
// CPU copies). LibTorch 1.13 has no C++ DistributedDataParallel, so the trainer averages gradients
// itself after backward() (fusion/trainer.h, TrainOptions::group).
//
// Failure: a collective that a peer does not join (the peer died, or hangs) throws
// std::runtime_error within the group's timeout, on every surviving rank; the caller stops.
#pragma once

#include <ATen/core/Tensor.h>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace mosaic::fusion {

struct TrainingGroupOptions {
  std::string master_addr = "127.0.0.1";  ///< rank 0's address (torchrun's MASTER_ADDR)
  int master_port = 29500;                ///< the rendezvous port on it (MASTER_PORT)
  int rank = 0;                           ///< this process, in [0, world_size) (RANK)
  int world_size = 1;                     ///< processes in the group (WORLD_SIZE)
  std::chrono::milliseconds timeout{60000};  ///< rendezvous and each collective
};

class TrainingGroup {
 public:
  // Joins the group: blocks until every rank has arrived. Throws std::invalid_argument for a rank
  // outside [0, world_size) or a port outside [1, 65535], std::runtime_error naming the address when
  // the rendezvous fails or times out.
  static std::shared_ptr<TrainingGroup> Join(const TrainingGroupOptions& options);
  ~TrainingGroup();

  int rank() const { return options_.rank; }
  int world_size() const { return options_.world_size; }
  const TrainingGroupOptions& options() const { return options_; }

  // Rank `root`'s values of `tensors` (CPU, contiguous) copied into every rank's, in place.
  void Broadcast(std::vector<at::Tensor>& tensors, int root = 0);
  // Every parameter's gradient replaced by its mean over the ranks, as one flattened allreduce.
  // Parameters whose gradient is undefined on this rank take part with zeros (every rank must join
  // every collective). Returns the bytes this rank sent into the allreduce.
  int64_t AverageGradients(const std::vector<at::Tensor>& parameters);
  // The sum of `values` over the ranks, element by element.
  std::vector<double> Sum(const std::vector<double>& values);
  // Rank 0's `bytes` on every rank (the others' arguments are ignored).
  std::string BroadcastBytes(const std::string& bytes);
  // Returns when every rank has called it.
  void Barrier();

  int64_t bytes_allreduced() const { return bytes_allreduced_; }  ///< by AverageGradients, so far

 private:
  explicit TrainingGroup(TrainingGroupOptions options);
  struct Impl;
  std::unique_ptr<Impl> impl_;
  TrainingGroupOptions options_;
  int64_t bytes_allreduced_ = 0;
};

}  // namespace mosaic::fusion
