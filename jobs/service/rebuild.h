// Rebuild: trains the model on a snapshot of the store (jobs/service/snapshot.h), writes it as a new
// immutable version (jobs/service/version.h) and makes it current. Items written while it trained are
// placed with the new version in the batch that switches to it.
//
// The training takes a read-only snapshot and holds no lock; only the final write takes the store's
// write lock (waiting for another writer). A checkpoint file per epoch (in the store folder) lets an
// interrupted rebuild resume, refused when the store's graph changed since.
#pragma once

#include <nlohmann/json.hpp>

#include <cstdint>
#include <functional>
#include <string>

#include "fusion/training_graph.h"
#include "jobs/service/snapshot.h"
#include "store/status.h"

namespace mosaic::jobs::service {

enum class HnswMode { kAuto, kOn, kOff };  ///< kAuto: an HNSW graph from kHnswMinItems items on

// Parses "auto", "on" or "off"; InvalidArgument otherwise.
inline Status ParseHnswMode(const std::string& text, HnswMode* mode) {
  if (text == "auto") return *mode = HnswMode::kAuto, Status::OK();
  if (text == "on") return *mode = HnswMode::kOn, Status::OK();
  if (text == "off") return *mode = HnswMode::kOff, Status::OK();
  return Status::InvalidArgument("--hnsw must be auto, on or off, not '" + text + "'");
}

// A data-parallel rebuild over a group of processes (torchrun's conventions; fusion/training_group.h).
// Every rank reads the same store folder (shared storage, or a checkpoint of the store at the same
// path) and trains on its share of each step; rank 0 alone writes checkpoints and the version.
struct DistributedRebuild {
  bool enabled = false;
  std::string master_addr = "127.0.0.1";  ///< MASTER_ADDR
  int master_port = 29500;                ///< MASTER_PORT
  int rank = 0;                           ///< RANK
  int world_size = 1;                     ///< WORLD_SIZE
  int timeout_ms = 120000;                ///< rendezvous, and each collective
};

struct RebuildOptions {
  /// v1: the graph-attention model; v2: fusion/second_version.h; auto: v2 where it fits in memory
  /// (fusion::SecondVersionFits), else v1 (the report's "kind" says which, and why when v1)
  std::string model_kind = "v1";
  int epochs = 0;                  ///< 0: the trainer's default (or the resumed run's)
  uint64_t seed = 2026;            ///< initialisation, sampling and dropout
  bool resume = false;             ///< continue from the last checkpoint
  HnswMode hnsw = HnswMode::kAuto;
  std::string device = "cpu";      ///< auto, cpu or cuda
  int write_lock_wait_ms = 30000;  ///< how long the final write waits for another writer
  std::function<void()> on_wait_for_lock;  ///< called when it starts waiting
  /// After each training step: epoch (0-based), epochs, step (1-based), steps, last epoch's BPR loss.
  std::function<void(int, int, int64_t, int64_t, double)> on_step;
  std::function<void(int64_t done, int64_t total)> on_hnsw;  ///< while the HNSW graph is built
  std::function<void(int done, int total, const char* stage)> on_fit_stage;  ///< v2: before each stage of its fit
  DistributedRebuild distributed;  ///< off: this process alone
};

// What a rebuild did, as `mosaic rebuild --json` prints it: version, epochs, epochs_run,
// resumed_from_epoch, seed, device, seconds, stages {snapshot, training, representations, hnsw,
// write}, hnsw (its parameters or null), seconds_per_epoch, transr_triples, transr_triples_per_second,
// final_loss, losses, counts {users, items, entities, interactions, kg_triples, kg_relations},
// late_items_placed; distributed {rank, world_size, bytes_allreduced_per_step, allreduce_seconds} for a
// group. A second version reports kind "v2", version, seed, seconds, stages {snapshot, fit,
// representations, hnsw, write}, hnsw, second_version {ease_lambda, blend_weight, cold_weight,
// count_k, ease_rank, content (the kernel's point), validation {ease, content, blend: Recall@20 of the
// chosen points; few_plays (null when skipped): the chosen (c, k) with its pseudo-few-shot Recall@20
// and the held-out plays' Recall@20 and NDCG@20}},
// counts and late_items_placed. A rank other than 0 reports {rank, world_size, epochs_run, seconds_per_epoch, distributed}
// and version 0: it writes nothing.
using RebuildReport = nlohmann::json;

// The graph a rebuild trains on: a snapshot of `view` with every interaction (fusion::BuildTrainingGraph).
Status TakeTrainingGraph(const store::ReadView& view, Snapshot* snapshot, fusion::TrainingGraph* graph);

// Runs a rebuild of the store in `store_dir`. InvalidArgument when there is nothing to train on, or
// for a resume that does not fit; the store's errors otherwise. On error the current version stays.
// In a group: every rank must get the same snapshot (InvalidArgument on all ranks otherwise), a
// rank that stops or fails makes the others fail with Aborted naming the group, and only rank 0
// writes; a resume is planned by rank 0 from its checkpoint and sent to the others. The second
// version has no epochs: InvalidArgument for it with --resume, --epochs or a group.
Status Rebuild(const std::string& store_dir, const RebuildOptions& options, RebuildReport* report);

}  // namespace mosaic::jobs::service
