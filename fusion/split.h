// Deterministic train/valid/test splits of EvalData for the three evaluation protocols of
// ../shared/datasets/README.md: warm top-K (KGAT/RecBole), cold-start items, and KGCN's CTR task.
//
// Every random choice comes from fusion/random.h (SplitMix64 seeded from (seed, purpose, user or
// item), its unbiased bounded draw and Fisher-Yates shuffle), never from std::shuffle or
// std::uniform_int_distribution, whose results differ between standard libraries. So a fixed seed
// gives byte-identical splits on every platform, and one user's split depends only on the seed and
// that user's own interactions.
#pragma once

#include <cstdint>
#include <string>

#include "fusion/eval_data.h"

namespace mosaic::fusion {

// The warm top-K protocol: each user's interactions are shuffled and split 80/10/10.
// For a user with n >= 3 interactions, n_test = n_valid = max(1, round(0.1 n)) (half rounds up)
// and the rest is train; the floor of 1 is RecBole's rule, so every such user has a test item.
// Users with fewer than 3 interactions keep everything in train. train/valid/test are sorted
// ascending; cold_items is empty.
// Throws std::invalid_argument when an interaction names a user or item out of range.
Split WarmSplit(const EvalData& data, uint64_t seed);

// The cold-start protocol: round(0.2 m) of the m items that have any interaction are held out
// entirely (cold_items, sorted) and all their interactions go to test. Each user's remaining
// interactions are split 90/10 train/valid as in WarmSplit (n_valid = max(1, round(0.1 n)) when
// n >= 3, else all train), so no cold item appears in train or valid.
// Throws std::invalid_argument as WarmSplit.
Split ColdSplit(const EvalData& data, uint64_t seed);

// The few-shot protocol: round(0.2 m) of the m items that have any interaction are drawn (the same
// items for every `shots` of a seed; in cold_items, sorted); of each, `shots` interactions drawn at
// random stay in train and the rest go to test (an item with no more than `shots` keeps all in
// train). The draws are nested: the interactions kept with 1 shot are among those kept with 3.
// Each user's other interactions are split 90/10 train/valid as in ColdSplit, so test holds only
// the few-shot items' held-out interactions. Throws std::invalid_argument for shots == 0 and as WarmSplit.
Split FewShotSplit(const EvalData& data, uint64_t seed, size_t shots);

// The global temporal protocol: interactions ordered by timestamp (ties by index); the last
// round(0.1 n) are test, the round(0.1 n) before them valid, the rest train. Users and items may
// first appear in valid or test. No randomness. Throws std::invalid_argument when no interaction
// has a timestamp (all 0) and as WarmSplit.
Split TemporalSplit(const EvalData& data);

// The KGCN CTR protocol: positives are the interactions whose item has item_in_kg; for each user,
// as many negatives as that user has positives, drawn uniformly without replacement from the KG
// items the user never interacted with (all of them when there are fewer). All examples are
// shuffled together, then valid and test take floor(0.2 N) each and train the rest (6:2:2).
// Throws std::invalid_argument when item_in_kg does not have num_items entries or an
// interaction is out of range.
CtrSplit KgcnCtrSplit(const EvalData& data, uint64_t seed);

// Writes train.tsv, valid.tsv, test.tsv (header `user\titem\tweight`, rows in the split's order,
// weight with "%g") and cold_items.tsv (header `item`, written even when empty so no stale file
// from an earlier split survives) into dir, creating it. Keys come from data.user_keys and
// data.item_keys; when one of those is empty, the decimal dense index stands in.
// Throws std::invalid_argument when a non-empty key list has the wrong size or an index is out
// of range, and std::runtime_error naming the path on an I/O failure.
void WriteSplit(const EvalData& data, const Split& split, const std::string& dir);

// As WriteSplit for a CTR split: train.tsv, valid.tsv, test.tsv with header `user\titem\tlabel`.
void WriteCtrSplit(const EvalData& data, const CtrSplit& split, const std::string& dir);

}  // namespace mosaic::fusion
