// The graph-attention model behind the Baseline interface, so that `mosaic eval` measures it in the
// same harness, on the same split, as the baselines: Fit builds the collaborative knowledge graph of
// the training interactions (plus the KG triples and text vectors of EvalData), trains with early
// stopping on the validation interactions, and keeps every node's representation for ScoreUser.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "fusion/baselines.h"
#include "fusion/trainer.h"

namespace mosaic::fusion {

struct KgatRankerOptions {
  TrainOptions train;       ///< model and optimiser settings (seed, device, epoch limit included)
  bool use_kg = true;       ///< false: the KG triples are left out (the ablation row)
  int validate_every = 2;   ///< epochs between validation Recall@20 measurements
  int patience = 3;         ///< measurements without improvement before stopping
  std::string name = "Mosaic";  ///< row name
};

// Items with no training interaction are cold (no id embedding): in the cold protocol these are the
// held-out items, which the model then scores from their text and KG neighbours alone. With
// $MOSAIC_TRAIN_LOG set, each validation prints a line (epoch, losses, validation Recall@20) on stderr.
std::unique_ptr<Baseline> MakeKgatRanker(const KgatRankerOptions& options);

}  // namespace mosaic::fusion
