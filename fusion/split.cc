#include "fusion/split.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <limits>
#include <stdexcept>
#include <utility>
#include <vector>

#include "fusion/random.h"

namespace mosaic::fusion {

namespace {

// Purposes that get independent random streams from one seed, so adding a draw for one purpose
// never shifts another's.
enum Stream : uint64_t {
  kWarmUser = 1,
  kColdItems = 2,
  kColdUser = 3,
  kCtrUser = 4,
  kCtrShuffle = 5,
  kFewShotItems = 6,
  kFewShotKeep = 7,
  kFewShotUser = 8,
};

// round(n / 10) with halves rounded up, in integers so no floating-point rounding can differ.
size_t Tenth(size_t n) { return (n + 5) / 10; }

void CheckInteractions(const EvalData& data) {
  if (data.interactions.size() > std::numeric_limits<uint32_t>::max()) {
    throw std::invalid_argument("split: more interactions than 32-bit indices can name");
  }
  for (size_t i = 0; i < data.interactions.size(); ++i) {
    const Interaction& x = data.interactions[i];
    if (x.user >= data.num_users || x.item >= data.num_items) {
      throw std::invalid_argument("split: interaction " + std::to_string(i) + " names user " +
                                  std::to_string(x.user) + " / item " + std::to_string(x.item) +
                                  " out of range (" + std::to_string(data.num_users) + " users, " +
                                  std::to_string(data.num_items) + " items)");
    }
  }
}

// Interaction indices grouped by user, each group in index order (a counting sort):
// user u's are order[offsets[u] .. offsets[u + 1]).
void GroupByUser(const EvalData& data, std::vector<uint32_t>* order, std::vector<size_t>* offsets) {
  offsets->assign(static_cast<size_t>(data.num_users) + 1, 0);
  for (const Interaction& x : data.interactions) ++(*offsets)[x.user + 1];
  for (size_t u = 0; u < data.num_users; ++u) (*offsets)[u + 1] += (*offsets)[u];
  std::vector<size_t> next(offsets->begin(), offsets->end() - 1);
  order->resize(data.interactions.size());
  for (size_t i = 0; i < data.interactions.size(); ++i) {
    (*order)[next[data.interactions[i].user]++] = static_cast<uint32_t>(i);
  }
}

// Shuffles one user's interaction indices and deals them out: test first, then valid, then the
// rest to train. Users with fewer than 3 interactions keep all in train.
void DealUser(std::vector<uint32_t>& mine, bool with_test, SplitMix64& rng, Split* split) {
  const size_t n = mine.size();
  size_t n_test = 0, n_valid = 0;
  if (n >= 3) {
    n_test = with_test ? std::max<size_t>(1, Tenth(n)) : 0;
    n_valid = std::max<size_t>(1, Tenth(n));
  }
  PartialShuffle(mine.begin(), mine.end(), n_test + n_valid, rng);
  split->test.insert(split->test.end(), mine.begin(), mine.begin() + n_test);
  split->valid.insert(split->valid.end(), mine.begin() + n_test, mine.begin() + n_test + n_valid);
  split->train.insert(split->train.end(), mine.begin() + n_test + n_valid, mine.end());
}

void SortSplit(Split* split) {
  std::sort(split->train.begin(), split->train.end());
  std::sort(split->valid.begin(), split->valid.end());
  std::sort(split->test.begin(), split->test.end());
}

// Where an interaction goes in a split that holds some items out: decided already (train, test), or
// dealt with the rest of its user's interactions, 90/10 train/valid.
enum class Placed : uint8_t { kDealt, kTrain, kTest };

// Puts each interaction where `placed` says, deals each user's kDealt ones 90/10 train/valid with
// the generator (seed, user_stream, user), and sorts the split.
void DealTheRest(const EvalData& data, const std::vector<Placed>& placed, uint64_t seed, uint64_t user_stream,
                 Split* split) {
  std::vector<uint32_t> order;
  std::vector<size_t> offsets;
  GroupByUser(data, &order, &offsets);
  std::vector<uint32_t> mine;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    mine.clear();
    for (size_t k = offsets[u]; k < offsets[u + 1]; ++k) {
      const uint32_t i = order[k];
      if (placed[i] == Placed::kTrain) {
        split->train.push_back(i);
      } else if (placed[i] == Placed::kTest) {
        split->test.push_back(i);
      } else {
        mine.push_back(i);
      }
    }
    SplitMix64 rng(StreamSeed(seed, user_stream, u));
    DealUser(mine, /*with_test=*/false, rng, split);
  }
  SortSplit(split);
}

// A FILE* that closes itself; Close() reports the failures fclose finds (a full disk shows there).
class OutFile {
 public:
  explicit OutFile(std::string path) : path_(std::move(path)), f_(std::fopen(path_.c_str(), "wb")) {
    if (!f_) Fail();
  }
  ~OutFile() {
    if (f_) std::fclose(f_);
  }
  OutFile(const OutFile&) = delete;
  OutFile& operator=(const OutFile&) = delete;

  void Put(const std::string& s) {
    if (std::fwrite(s.data(), 1, s.size(), f_) != s.size()) Fail();
  }
  void Close() {
    const bool bad = std::ferror(f_) != 0;
    const int rc = std::fclose(f_);
    f_ = nullptr;
    if (bad || rc != 0) Fail();
  }

 private:
  [[noreturn]] void Fail() {
    throw std::runtime_error(path_ + ": cannot write: " + std::strerror(errno));
  }

  std::string path_;  ///< for error messages
  std::FILE* f_;      ///< null once closed
};

// Resolves dense indices to external keys, or to decimal indices when the key list is empty.
class Keys {
 public:
  Keys(const std::vector<std::string>& keys, uint32_t count, const char* what)
      : keys_(keys), count_(count), what_(what) {
    if (!keys_.empty() && keys_.size() != count_) {
      throw std::invalid_argument(std::string("write split: ") + what_ + "_keys has " +
                                  std::to_string(keys_.size()) + " entries for " +
                                  std::to_string(count_));
    }
  }
  std::string operator()(uint32_t i) const {
    if (i >= count_) {
      throw std::invalid_argument(std::string("write split: ") + what_ + " " + std::to_string(i) +
                                  " out of range");
    }
    return keys_.empty() ? std::to_string(i) : keys_[i];
  }

 private:
  const std::vector<std::string>& keys_;
  uint32_t count_;
  const char* what_;  ///< "user" or "item"
};

std::string FormatG(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%g", v);
  return buf;
}

void MakeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) throw std::runtime_error(dir + ": cannot create folder: " + ec.message());
}

std::string Join(const std::string& dir, const char* name) {
  return (std::filesystem::path(dir) / name).string();
}

void WriteInteractions(const EvalData& data, const std::vector<uint32_t>& rows, const Keys& users,
                       const Keys& items, const std::string& path) {
  std::string text = "user\titem\tweight\n";
  for (uint32_t i : rows) {
    if (i >= data.interactions.size()) {
      throw std::invalid_argument("write split: interaction index " + std::to_string(i) +
                                  " out of range");
    }
    const Interaction& x = data.interactions[i];
    text += users(x.user) + '\t' + items(x.item) + '\t' + FormatG(x.weight) + '\n';
  }
  OutFile out(path);
  out.Put(text);
  out.Close();
}

void WriteExamples(const std::vector<CtrExample>& rows, const Keys& users, const Keys& items,
                   const std::string& path) {
  std::string text = "user\titem\tlabel\n";
  for (const CtrExample& e : rows) {
    text += users(e.user) + '\t' + items(e.item) + '\t' + std::to_string(e.label) + '\n';
  }
  OutFile out(path);
  out.Put(text);
  out.Close();
}

}  // namespace

Split WarmSplit(const EvalData& data, uint64_t seed) {
  CheckInteractions(data);
  std::vector<uint32_t> order;
  std::vector<size_t> offsets;
  GroupByUser(data, &order, &offsets);

  Split split;
  std::vector<uint32_t> mine;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    mine.assign(order.begin() + offsets[u], order.begin() + offsets[u + 1]);
    SplitMix64 rng(StreamSeed(seed, kWarmUser, u));
    DealUser(mine, /*with_test=*/true, rng, &split);
  }
  SortSplit(&split);
  return split;
}

Split ColdSplit(const EvalData& data, uint64_t seed) {
  CheckInteractions(data);
  std::vector<bool> seen(data.num_items, false);
  for (const Interaction& x : data.interactions) seen[x.item] = true;
  std::vector<uint32_t> items;  // ascending, so the draw does not depend on interaction order
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (seen[i]) items.push_back(i);
  }
  const size_t n_cold = (2 * items.size() + 5) / 10;  // round(0.2 m), halves up
  SplitMix64 item_rng(StreamSeed(seed, kColdItems, 0));
  PartialShuffle(items.begin(), items.end(), n_cold, item_rng);

  Split split;
  split.cold_items.assign(items.begin(), items.begin() + n_cold);
  std::sort(split.cold_items.begin(), split.cold_items.end());
  std::vector<bool> cold(data.num_items, false);
  for (uint32_t i : split.cold_items) cold[i] = true;

  std::vector<Placed> placed(data.interactions.size(), Placed::kDealt);
  for (uint32_t k = 0; k < placed.size(); ++k) {
    if (cold[data.interactions[k].item]) placed[k] = Placed::kTest;
  }
  DealTheRest(data, placed, seed, kColdUser, &split);
  return split;
}

Split FewShotSplit(const EvalData& data, uint64_t seed, size_t shots) {
  CheckInteractions(data);
  if (shots == 0) throw std::invalid_argument("few-shot split: shots must be at least 1");
  std::vector<std::vector<uint32_t>> of_item(data.num_items);  // interaction indices, ascending
  for (uint32_t k = 0; k < data.interactions.size(); ++k) of_item[data.interactions[k].item].push_back(k);
  std::vector<uint32_t> items;  // ascending, so the draw does not depend on interaction order
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (!of_item[i].empty()) items.push_back(i);
  }
  // The same items for every `shots` of a seed: the draw does not depend on it.
  const size_t n_few = (2 * items.size() + 5) / 10;
  SplitMix64 item_rng(StreamSeed(seed, kFewShotItems, 0));
  PartialShuffle(items.begin(), items.end(), n_few, item_rng);

  Split split;
  split.cold_items.assign(items.begin(), items.begin() + n_few);
  std::sort(split.cold_items.begin(), split.cold_items.end());
  std::vector<Placed> placed(data.interactions.size(), Placed::kDealt);
  for (uint32_t i : split.cold_items) {
    // One permutation per item, whatever `shots` is: the 1 kept are among the 3, the 3 among the 5.
    std::vector<uint32_t>& mine = of_item[i];
    SplitMix64 rng(StreamSeed(seed, kFewShotKeep, i));
    Shuffle(mine.begin(), mine.end(), rng);
    for (size_t k = 0; k < mine.size(); ++k) placed[mine[k]] = k < shots ? Placed::kTrain : Placed::kTest;
  }
  DealTheRest(data, placed, seed, kFewShotUser, &split);
  return split;
}

Split TemporalSplit(const EvalData& data) {
  CheckInteractions(data);
  std::vector<uint32_t> by_time(data.interactions.size());
  bool dated = false;
  for (uint32_t k = 0; k < by_time.size(); ++k) {
    by_time[k] = k;
    dated = dated || data.interactions[k].timestamp != 0;
  }
  if (!dated) throw std::invalid_argument("temporal split: the interactions have no timestamps");
  std::stable_sort(by_time.begin(), by_time.end(), [&](uint32_t a, uint32_t b) {
    return data.interactions[a].timestamp < data.interactions[b].timestamp;
  });
  const size_t n = by_time.size(), n_test = Tenth(n), n_valid = Tenth(n);
  Split split;
  split.train.assign(by_time.begin(), by_time.end() - std::ptrdiff_t(n_test + n_valid));
  split.valid.assign(by_time.end() - std::ptrdiff_t(n_test + n_valid), by_time.end() - std::ptrdiff_t(n_test));
  split.test.assign(by_time.end() - std::ptrdiff_t(n_test), by_time.end());
  SortSplit(&split);
  return split;
}

CtrSplit KgcnCtrSplit(const EvalData& data, uint64_t seed) {
  CheckInteractions(data);
  if (data.item_in_kg.size() != data.num_items) {
    throw std::invalid_argument("ctr split: item_in_kg has " +
                                std::to_string(data.item_in_kg.size()) + " entries for " +
                                std::to_string(data.num_items) + " items");
  }
  std::vector<uint32_t> kg_items;
  for (uint32_t i = 0; i < data.num_items; ++i) {
    if (data.item_in_kg[i]) kg_items.push_back(i);
  }

  std::vector<uint32_t> order;
  std::vector<size_t> offsets;
  GroupByUser(data, &order, &offsets);

  std::vector<CtrExample> all;
  std::vector<bool> touched(data.num_items, false);  // the current user's items, reset after
  std::vector<uint32_t> pool;
  for (uint32_t u = 0; u < data.num_users; ++u) {
    size_t positives = 0;
    for (size_t k = offsets[u]; k < offsets[u + 1]; ++k) {
      const Interaction& x = data.interactions[order[k]];
      touched[x.item] = true;
      if (data.item_in_kg[x.item]) {
        all.push_back({u, x.item, 1});
        ++positives;
      }
    }
    if (positives > 0) {
      pool.clear();
      for (uint32_t i : kg_items) {
        if (!touched[i]) pool.push_back(i);
      }
      const size_t n_neg = std::min(positives, pool.size());
      SplitMix64 rng(StreamSeed(seed, kCtrUser, u));
      PartialShuffle(pool.begin(), pool.end(), n_neg, rng);
      for (size_t k = 0; k < n_neg; ++k) all.push_back({u, pool[k], 0});
    }
    for (size_t k = offsets[u]; k < offsets[u + 1]; ++k) {
      touched[data.interactions[order[k]].item] = false;
    }
  }

  SplitMix64 rng(StreamSeed(seed, kCtrShuffle, 0));
  Shuffle(all.begin(), all.end(), rng);
  const size_t n_valid = all.size() * 2 / 10;
  const size_t n_test = all.size() * 2 / 10;
  const size_t n_train = all.size() - n_valid - n_test;
  CtrSplit split;
  split.train.assign(all.begin(), all.begin() + n_train);
  split.valid.assign(all.begin() + n_train, all.begin() + n_train + n_valid);
  split.test.assign(all.begin() + n_train + n_valid, all.end());
  return split;
}

void WriteSplit(const EvalData& data, const Split& split, const std::string& dir) {
  const Keys users(data.user_keys, data.num_users, "user");
  const Keys items(data.item_keys, data.num_items, "item");
  MakeDir(dir);
  WriteInteractions(data, split.train, users, items, Join(dir, "train.tsv"));
  WriteInteractions(data, split.valid, users, items, Join(dir, "valid.tsv"));
  WriteInteractions(data, split.test, users, items, Join(dir, "test.tsv"));
  std::string text = "item\n";
  for (uint32_t i : split.cold_items) text += items(i) + '\n';
  OutFile out(Join(dir, "cold_items.tsv"));
  out.Put(text);
  out.Close();
}

void WriteCtrSplit(const EvalData& data, const CtrSplit& split, const std::string& dir) {
  const Keys users(data.user_keys, data.num_users, "user");
  const Keys items(data.item_keys, data.num_items, "item");
  MakeDir(dir);
  WriteExamples(split.train, users, items, Join(dir, "train.tsv"));
  WriteExamples(split.valid, users, items, Join(dir, "valid.tsv"));
  WriteExamples(split.test, users, items, Join(dir, "test.tsv"));
}

}  // namespace mosaic::fusion
