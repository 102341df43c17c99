// EASE's solve, timed both ways on a dumped split: the user space (push-through identity, what
// `mosaic eval` uses when there are fewer users than items) and the item space (the paper's
// items x items Cholesky, float32). Prints seconds, the process's peak resident memory after each,
// and the largest score difference between the two over every user.
//   ease_solve DIR LAMBDA     (DIR from `mosaic eval --dump-split DIR`)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <unordered_map>

#include "fusion/baselines.h"

namespace {

// Peak resident set size of this process so far (VmHWM), in MiB.
double PeakMiB() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atof(line.c_str() + 6) / 1024.0;
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::fprintf(stderr, "usage: ease_solve DIR LAMBDA\n");
    return 2;
  }
  const std::string dir = argv[1];
  const double lambda = std::atof(argv[2]);
  mosaic::fusion::EvalData data;
  std::unordered_map<std::string, uint32_t> items, users;
  std::ifstream item_file(dir + "/items.tsv");
  std::string line;
  std::getline(item_file, line);
  while (std::getline(item_file, line)) items.emplace(line, uint32_t(items.size()));
  std::ifstream train_file(dir + "/train.tsv");
  std::getline(train_file, line);
  std::vector<uint32_t> train;
  while (std::getline(train_file, line)) {
    std::istringstream fields(line);
    std::string user, item;
    std::getline(fields, user, '\t');
    std::getline(fields, item, '\t');
    const uint32_t u = users.emplace(user, uint32_t(users.size())).first->second;
    train.push_back(uint32_t(data.interactions.size()));
    data.interactions.push_back({u, items.at(item), 1.0f});
  }
  data.num_users = uint32_t(users.size());
  data.num_items = uint32_t(items.size());
  std::printf("%u users, %u items, %zu training interactions, lambda %g; peak RSS at start %.0f MiB\n",
              data.num_users, data.num_items, train.size(), lambda, PeakMiB());

  std::vector<std::vector<float>> user_scores(data.num_users);
  {
    auto model = mosaic::fusion::MakeEase(lambda, mosaic::fusion::EaseSolve::kUsers);
    const auto t0 = std::chrono::steady_clock::now();
    model->Fit(data, train, {});
    const double fit = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const auto t1 = std::chrono::steady_clock::now();
    for (uint32_t u = 0; u < data.num_users; ++u) model->ScoreUser(u, &user_scores[u]);
    const double score = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
    std::printf("user space (%u x %u float64): fit %.2f s, scoring every user %.2f s, peak RSS %.0f MiB\n",
                data.num_users, data.num_users, fit, score, PeakMiB());
  }
  auto model = mosaic::fusion::MakeEase(lambda, mosaic::fusion::EaseSolve::kItems);
  const auto t0 = std::chrono::steady_clock::now();
  model->Fit(data, train, {});
  const double fit = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double worst = 0;
  std::vector<float> scores;
  const auto t1 = std::chrono::steady_clock::now();
  for (uint32_t u = 0; u < data.num_users; ++u) {
    model->ScoreUser(u, &scores);
    for (uint32_t i = 0; i < data.num_items; ++i) worst = std::max(worst, double(std::fabs(scores[i] - user_scores[u][i])));
  }
  const double score = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("item space (%u x %u float32): fit %.2f s, scoring every user %.2f s, peak RSS %.0f MiB\n",
              data.num_items, data.num_items, fit, score, PeakMiB());
  std::printf("largest |score difference| between the two: %.3g\n", worst);
  return 0;
}
