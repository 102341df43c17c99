// query_bench: single-query retrieval latency over item vectors of a real model version, and the time
// from POST /items to the item's appearance in /recommend?new_only=1 of a running `mosaic serve`.
// bench/query.sh drives it; see there for the figures it prints.
//
//   query_bench exact  --store S [--items 100000] [--queries 2000] [-k 20] [--json]
//       fusion::ItemIndex::SearchExact beside FAISS IndexFlatIP (and at::mv_out + at::topk) on the
//       same vectors, one thread each, queries interleaved; then what exploration adds to a query
//       (ServingModel::Explore's work: a pass over every column for the candidates, the last 1% of
//       the rows standing for new items, their scores and calibrated priors, the 256 best posterior
//       means, fusion::MergeExplored with 2 slots).
//   query_bench hnsw   --store S [--items 1000000] [--queries 1000] [--recall-queries 500]
//                      [--m 16] [--ef-construction 100] [--ef 16,32,64,128] [--threads 2] [--json]
//       ItemIndex's HNSW graph: build time, then per ef: p50/p99 latency and recall@k against exact.
//   query_bench post-latency --url http://127.0.0.1:PORT --user U [--n 200] [--artist A] [--tag T]...
//       per iteration: POST /items a new catalogue item, then GET /recommend?user=U&new_only=1&k=1000
//       until it lists the item; p50/p99 of POST start -> GET with the item returned.
//
// Item vectors: the current model version's item rows (store rows U..U+I-1), tiled to --items rows.
// Copy 0 is the real rows; every further copy of a row adds Gaussian noise of --noise times each
// dimension's standard deviation over the real items, then multiplies the row by a scale drawn
// uniformly from [1 - --jitter, 1 + --jitter] (default 0.1). The default noise (auto) is chosen so
// that a copy lies about as far from its source as a real item from its nearest real neighbour
// (median): copies are plausible new items in the source's neighbourhood, not near-duplicates (57
// near-identical copies of each item at 1M would be a degenerate catalogue). Never i.i.d. random
// vectors: the structure (clusters, norms, correlations) is the model's. Queries are the real user vectors
// (rows 0..U-1), cycled when more are asked for.
#include <ATen/ATen.h>
#include <CLI/CLI.hpp>
#include <dlfcn.h>
#include <faiss/IndexFlat.h>
#include <httplib.h>
#include <omp.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <cstdio>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

#include "fusion/explore.h"
#include "fusion/item_index.h"
#include "jobs/service/version.h"
#include "store/store.h"

namespace {

using namespace mosaic;
using Clock = std::chrono::steady_clock;

double Ms(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double, std::milli>(b - a).count(); }

double Percentile(std::vector<double> v, double p) {
  if (v.empty()) return NAN;
  std::sort(v.begin(), v.end());
  const double pos = p * double(v.size() - 1);
  const size_t lo = size_t(pos);
  const size_t hi = std::min(lo + 1, v.size() - 1);
  return v[lo] + (v[hi] - v[lo]) * (pos - double(lo));
}

nlohmann::json Summary(const std::vector<double>& ms) {
  double sum = 0;
  for (double x : ms) sum += x;
  return {{"p50_ms", Percentile(ms, 0.5)}, {"p99_ms", Percentile(ms, 0.99)}, {"mean_ms", ms.empty() ? NAN : sum / ms.size()},
          {"max_ms", ms.empty() ? NAN : *std::max_element(ms.begin(), ms.end())}, {"n", ms.size()}};
}

// One BLAS thread (OpenBLAS has its own pool besides OpenMP's); returns whether it could be set.
bool SingleThreadedBlas() {
  using SetThreads = void (*)(int);
  auto* set = reinterpret_cast<SetThreads>(dlsym(RTLD_DEFAULT, "openblas_set_num_threads"));
  if (set) set(1);
  return set != nullptr;
}
int BlasThreads() {
  using GetThreads = int (*)();
  auto* get = reinterpret_cast<GetThreads>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  return get ? get() : -1;
}

struct Vectors {
  int64_t dim = 0;
  int64_t real_items = 0;
  std::vector<float> users;  // [U, dim]
  std::vector<float> items;  // [N, dim], tiled
  uint64_t version = 0;
  double noise = 0;      // the noise used (auto resolved)
  double nn_median = 0;  // median distance of a real item to its nearest real item (auto noise)
};

// Loads the current model version and tiles its item rows to `n` (see the file comment).
bool LoadVectors(const std::string& store_dir, int64_t n, double noise, double jitter, uint64_t seed, Vectors* out) {
  std::unique_ptr<store::Store> store;
  store::OpenOptions options;
  options.read_only = true;
  Status s = store::Store::Open(store_dir, options, &store);
  jobs::service::LoadedModel m;
  if (s.ok()) s = jobs::service::LoadCurrentModel(*store->NewReadView(), &m);
  if (!s.ok()) {
    std::fprintf(stderr, "query_bench: %s: %s\n", store_dir.c_str(), s.ToString().c_str());
    return false;
  }
  const at::Tensor reps = m.reps.contiguous();
  const int64_t d = reps.size(1), U = m.num_users(), I = m.num_items();
  if (U <= 0 || I <= 0) {
    std::fprintf(stderr, "query_bench: the model has %lld users and %lld items\n", (long long)U, (long long)I);
    return false;
  }
  const float* r = reps.data_ptr<float>();
  out->dim = d;
  out->real_items = I;
  out->version = m.version;
  out->users.assign(r, r + U * d);
  const float* items = r + U * d;
  std::vector<double> mean(size_t(d), 0), sd(size_t(d), 0);
  for (int64_t i = 0; i < I; ++i)
    for (int64_t j = 0; j < d; ++j) mean[size_t(j)] += items[i * d + j];
  for (auto& x : mean) x /= double(I);
  for (int64_t i = 0; i < I; ++i)
    for (int64_t j = 0; j < d; ++j) sd[size_t(j)] += std::pow(items[i * d + j] - mean[size_t(j)], 2);
  for (auto& x : sd) x = std::sqrt(x / double(I));
  if (noise < 0) {
    // Auto: a copy lies about as far from its source as the median real item from its nearest real
    // neighbour (the noise vector's expected length is noise * sqrt(sum of variances)), so tiled
    // copies are plausible new neighbours, not near-duplicates.
    const at::Tensor x = reps.narrow(0, U, I).to(at::kFloat);
    const at::Tensor sq = x.pow(2).sum(1);
    std::vector<at::Tensor> nearest;
    for (int64_t b = 0; b < I; b += 1024) {
      const int64_t m = std::min<int64_t>(1024, I - b);
      at::Tensor d2 = sq.narrow(0, b, m).unsqueeze(1) + sq.unsqueeze(0) - 2 * x.narrow(0, b, m).matmul(x.t());
      d2.narrow(1, b, m).diagonal().fill_(std::numeric_limits<float>::infinity());
      nearest.push_back(std::get<0>(d2.min(1)).clamp_min(0).sqrt());
    }
    double total_var = 0;
    for (double x2 : sd) total_var += x2 * x2;
    out->nn_median = at::cat(nearest).median().item<double>();
    noise = out->nn_median / std::sqrt(total_var);
  }
  out->noise = noise;
  out->items.resize(size_t(n * d));
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> gauss(0, 1);
  std::uniform_real_distribution<double> scale(1 - jitter, 1 + jitter);
  for (int64_t i = 0; i < n; ++i) {
    const float* src = items + (i % I) * d;
    float* dst = out->items.data() + i * d;
    if (i < I) {
      std::copy(src, src + d, dst);
      continue;
    }
    const double s = scale(rng);
    for (int64_t j = 0; j < d; ++j) dst[j] = float(s * (src[j] + noise * sd[size_t(j)] * gauss(rng)));
  }
  return true;
}

const float* Query(const Vectors& v, int64_t q) {
  const int64_t users = int64_t(v.users.size()) / v.dim;
  return v.users.data() + (q % users) * v.dim;
}

void Print(const nlohmann::json& j, bool json, const std::string& text) {
  if (json) {
    std::printf("%s\n", j.dump().c_str());
  } else {
    std::printf("%s", text.c_str());
  }
  std::fflush(stdout);
}

// Writes the tiled items and the user queries as raw float32 files (FILE.items, FILE.users) for
// experiments outside this program.
int RunDump(const std::string& store_dir, int64_t n, double noise, double jitter, const std::string& file) {
  Vectors v;
  if (!LoadVectors(store_dir, n, noise, jitter, 2, &v)) return 1;
  for (auto [suffix, values] : {std::pair{".items", &v.items}, std::pair{".users", &v.users}}) {
    FILE* f = std::fopen((file + suffix).c_str(), "wb");
    if (!f || std::fwrite(values->data(), sizeof(float), values->size(), f) != values->size()) return 1;
    std::fclose(f);
  }
  std::printf("dim %lld items %lld users %lld\n", (long long)v.dim, (long long)n, (long long)(v.users.size() / v.dim));
  return 0;
}

int RunExact(const std::string& store_dir, int64_t n, int64_t queries, int64_t k, double noise, double jitter, bool json) {
  Vectors v;
  if (!LoadVectors(store_dir, n, noise, jitter, 1, &v)) return 1;
  at::set_num_threads(1);
  omp_set_num_threads(1);
  const bool blas_set = SingleThreadedBlas();
  const int64_t d = v.dim;

  fusion::ItemIndex index(d);
  index.Add(v.items.data(), n);
  faiss::IndexFlatIP flat(d);
  flat.add(n, v.items.data());
  at::Tensor items_t = at::from_blob(v.items.data(), {n, d}, at::kFloat);
  at::Tensor scores_t = at::empty({n}, at::kFloat);

  std::vector<float> distances(static_cast<size_t>(k));
  std::vector<faiss::Index::idx_t> labels(static_cast<size_t>(k));
  std::vector<double> exact_ms, faiss_ms, aten_ms, explore_ms;
  double agree = 0, compared = 0;
  // Exploration's inputs: 1% of the rows are new (the last ones), with small exposure counts.
  const int64_t first_new = n - std::max<int64_t>(1, n / 100);
  std::vector<char> cold(static_cast<size_t>(n), 0);
  std::vector<uint64_t> impressions(static_cast<size_t>(n), 0), plays(static_cast<size_t>(n), 0);
  std::mt19937_64 exposure_rng(7);
  for (int64_t c = first_new; c < n; ++c) {
    cold[size_t(c)] = 1;
    impressions[size_t(c)] = exposure_rng() % 50;
    plays[size_t(c)] = impressions[size_t(c)] ? exposure_rng() % (impressions[size_t(c)] / 5 + 1) : 0;
  }
  const fusion::PlayCalibration calibration{2.0, -9.0};  // of the order fitted on Last.FM's version
  const fusion::ExploreSettings settings;
  std::mt19937_64 draw_rng(11);
  int64_t explored_results = 0;
  const int64_t warmup = 100;
  for (int64_t q = 0; q < warmup + queries; ++q) {
    const float* query = Query(v, q);
    const auto t0 = Clock::now();
    const fusion::TopK top = index.SearchExact(query, k);
    const auto t1 = Clock::now();
    flat.search(1, query, k, distances.data(), labels.data());
    const auto t2 = Clock::now();
    at::mv_out(scores_t, items_t, at::from_blob(const_cast<float*>(query), {d}, at::kFloat));
    auto top_t = at::topk(scores_t, k);
    const auto t3 = Clock::now();
    (void)top_t;
    {
      std::vector<fusion::ExploreCandidate> candidates;
      for (int64_t c = 0; c < n; ++c) {
        if (!cold[size_t(c)] || std::find(top.ids.begin(), top.ids.end(), c) != top.ids.end()) continue;
        candidates.push_back({c, calibration.Probability(index.Score(query, c)), impressions[size_t(c)], plays[size_t(c)]});
      }
      fusion::KeepMostPromising(256, settings, &candidates);
      std::vector<double> greedy;
      for (float score : top.scores) greedy.push_back(calibration.Probability(score));
      for (const auto& entry : fusion::MergeExplored(greedy, candidates, 2, settings, &draw_rng)) {
        explored_results += entry.explored;
      }
    }
    const auto t4 = Clock::now();
    if (q < warmup) continue;
    explore_ms.push_back(Ms(t3, t4));
    exact_ms.push_back(Ms(t0, t1));
    faiss_ms.push_back(Ms(t1, t2));
    aten_ms.push_back(Ms(t2, t3));
    const std::set<int64_t> ours(top.ids.begin(), top.ids.end());
    for (auto id : labels) agree += ours.count(int64_t(id));
    compared += double(k);
  }
  const nlohmann::json e = Summary(exact_ms), f = Summary(faiss_ms), a = Summary(aten_ms), x = Summary(explore_ms);
  nlohmann::json out = {
      {"mode", "exact"}, {"items", n}, {"real_items", v.real_items}, {"dim", d}, {"k", k}, {"queries", queries},
      {"warmup", warmup}, {"model_version", v.version}, {"noise", v.noise}, {"nn_median", v.nn_median}, {"jitter", jitter},
      {"threads", {{"aten", at::get_num_threads()}, {"openmp", omp_get_max_threads()},
                   {"openblas", blas_set ? BlasThreads() : -1}}},
      {"exact", e}, {"faiss_flat_ip", f}, {"aten_mv_topk", a},
      {"explore", x}, {"explore_candidates", n - first_new}, {"explored_results", explored_results},
      {"ratio_p50", e["p50_ms"].get<double>() / f["p50_ms"].get<double>()},
      {"ratio_p99", e["p99_ms"].get<double>() / f["p99_ms"].get<double>()},
      {"agreement_with_faiss", agree / compared}};
  char text[1024];
  std::snprintf(text, sizeof text,
                "exact top-%lld, %lld items x %lld floats (%lld real item rows tiled), %lld queries (real users), "
                "1 thread (aten %d, openmp %d, openblas %d):\n"
                "  ItemIndex::SearchExact   p50 %.3f ms  p99 %.3f ms\n"
                "  FAISS IndexFlatIP        p50 %.3f ms  p99 %.3f ms\n"
                "  at::mv_out + at::topk    p50 %.3f ms  p99 %.3f ms\n"
                "  ratio exact/FAISS: p50 %.2fx  p99 %.2fx; top-%lld agreement with FAISS %.4f\n"
                "  exploration (%lld new items, 2 slots) p50 %.3f ms  p99 %.3f ms more per query\n",
                (long long)k, (long long)n, (long long)d, (long long)v.real_items, (long long)queries,
                at::get_num_threads(), omp_get_max_threads(), blas_set ? BlasThreads() : -1,
                e["p50_ms"].get<double>(), e["p99_ms"].get<double>(), f["p50_ms"].get<double>(),
                f["p99_ms"].get<double>(), a["p50_ms"].get<double>(), a["p99_ms"].get<double>(),
                out["ratio_p50"].get<double>(), out["ratio_p99"].get<double>(), (long long)k, agree / compared,
                (long long)(n - first_new), x["p50_ms"].get<double>(), x["p99_ms"].get<double>());
  Print(out, json, text);
  return 0;
}

int RunHnsw(const std::string& store_dir, int64_t n, int64_t queries, int64_t recall_queries, int64_t k, int m,
            int ef_construction, const std::vector<int>& efs, int threads, const std::string& metric, double noise,
            double jitter, bool json) {
  Vectors v;
  if (!LoadVectors(store_dir, n, noise, jitter, 2, &v)) return 1;
  at::set_num_threads(1);
  omp_set_num_threads(1);
  SingleThreadedBlas();
  const int64_t d = v.dim;
  fusion::ItemIndex index(d);
  index.Add(v.items.data(), n);
  v.items.clear();
  v.items.shrink_to_fit();

  fusion::HnswOptions options;
  options.m = m;
  options.ef_construction = ef_construction;
  options.threads = threads;
  options.ef_search = efs.empty() ? 64 : efs.front();
  options.metric = metric == "l2" ? fusion::HnswMetric::kLiftedL2 : fusion::HnswMetric::kInnerProduct;
  const std::string space = metric == "l2" ? "lifted MIPS->L2" : "inner product";
  const auto b0 = Clock::now();
  auto last = b0;
  index.BuildHnsw(options, [&](int64_t done) {
    if (!json && Ms(last, Clock::now()) > 10000) {
      last = Clock::now();
      std::fprintf(stderr, "  building: %lld / %lld rows, %.0f s\n", (long long)done, (long long)n, Ms(b0, last) / 1000);
    }
  });
  const double build_s = Ms(b0, Clock::now()) / 1000;
  const auto s0 = Clock::now();
  const size_t graph_bytes = index.SaveHnsw().size();
  const double save_s = Ms(s0, Clock::now()) / 1000;

  // Ground truth: exact top-k of the recall queries.
  std::vector<std::set<int64_t>> truth(static_cast<size_t>(recall_queries));
  std::vector<double> exact_ms;
  for (int64_t q = 0; q < recall_queries; ++q) {
    const auto t0 = Clock::now();
    const fusion::TopK top = index.SearchExact(Query(v, q), k);
    exact_ms.push_back(Ms(t0, Clock::now()));
    truth[size_t(q)] = std::set<int64_t>(top.ids.begin(), top.ids.end());
  }

  nlohmann::json sweep = nlohmann::json::array();
  std::string text;
  char line[512];
  std::snprintf(line, sizeof line,
                "HNSW (hnswlib, %s space, exact re-scoring) over %lld items x %lld floats (%lld real rows tiled, noise %.3f):\n"
                "  build: M %d, ef_construction %d, %d threads: %.1f s; graph %.0f MiB (saved in %.2f s)\n"
                "  exact top-%lld at this size (ground truth, 1 thread): p50 %.2f ms\n",
                space.c_str(), (long long)n, (long long)d, (long long)v.real_items, v.noise, m, ef_construction, threads, build_s,
                double(graph_bytes) / (1 << 20), save_s, (long long)k, Percentile(exact_ms, 0.5));
  text += line;
  nlohmann::json chosen;
  for (int ef : efs) {
    options.ef_search = ef;
    index.SetEfSearch(ef);
    double hit = 0, total = 0;
    for (int64_t q = 0; q < recall_queries; ++q) {
      const fusion::TopK top = index.Search(Query(v, q), k);
      for (int64_t id : top.ids) hit += double(truth[size_t(q)].count(id));
      total += double(truth[size_t(q)].size());
    }
    std::vector<double> ms;
    for (int64_t q = 0; q < 100 + queries; ++q) {
      const auto t0 = Clock::now();
      const fusion::TopK top = index.Search(Query(v, q), k);
      const auto t1 = Clock::now();
      if (q >= 100) ms.push_back(Ms(t0, t1));
    }
    nlohmann::json row = Summary(ms);
    row["ef"] = ef;
    row["recall"] = hit / total;
    sweep.push_back(row);
    std::snprintf(line, sizeof line, "  ef %4d: p50 %.3f ms  p99 %.3f ms  recall@%lld %.4f (%lld queries)\n", ef,
                  row["p50_ms"].get<double>(), row["p99_ms"].get<double>(), (long long)k, hit / total,
                  (long long)recall_queries);
    text += line;
    if (chosen.is_null() && hit / total >= 0.95) chosen = row;
  }
  if (chosen.is_null()) {
    text += "  no ef reached recall 0.95\n";
  } else {
    std::snprintf(line, sizeof line, "  smallest ef with recall >= 0.95: %d (p50 %.3f ms, p99 %.3f ms, recall %.4f)\n",
                  chosen["ef"].get<int>(), chosen["p50_ms"].get<double>(), chosen["p99_ms"].get<double>(),
                  chosen["recall"].get<double>());
    text += line;
  }
  const nlohmann::json out = {{"mode", "hnsw"}, {"items", n}, {"real_items", v.real_items}, {"dim", d}, {"k", k},
                              {"queries", queries}, {"recall_queries", recall_queries}, {"m", m},
                              {"ef_construction", ef_construction}, {"metric", space}, {"build_threads", threads},
                              {"search_threads", 1}, {"build_seconds", build_s}, {"graph_bytes", graph_bytes},
                              {"exact_ground_truth", Summary(exact_ms)}, {"sweep", sweep}, {"chosen", chosen},
                              {"model_version", v.version}, {"noise", v.noise}, {"nn_median", v.nn_median},
                              {"jitter", jitter}};
  Print(out, json, text);
  return 0;
}

// http://host:port -> (host, port)
bool ParseUrl(const std::string& url, std::string* host, int* port) {
  std::string rest = url;
  const std::string scheme = "http://";
  if (rest.compare(0, scheme.size(), scheme) == 0) rest = rest.substr(scheme.size());
  while (!rest.empty() && rest.back() == '/') rest.pop_back();
  const size_t colon = rest.rfind(':');
  if (colon == std::string::npos) return false;
  *host = rest.substr(0, colon);
  try {
    *port = std::stoi(rest.substr(colon + 1));
  } catch (...) {
    return false;
  }
  return true;
}

int RunPostLatency(const std::string& url, const std::string& user, int n, const std::string& artist,
                   const std::vector<std::string>& tags, int k, double timeout_ms, bool json) {
  std::string host;
  int port = 0;
  if (!ParseUrl(url, &host, &port)) {
    std::fprintf(stderr, "query_bench: bad --url '%s' (http://HOST:PORT)\n", url.c_str());
    return 2;
  }
  httplib::Client client(host, port);
  client.set_keep_alive(true);
  // As curl does: without it a POST's body waits for the server's delayed ACK of its headers (~40 ms).
  client.set_tcp_nodelay(true);
  client.set_read_timeout(10, 0);
  const std::string tag = std::to_string(getpid()) + "-" +
                          std::to_string(std::chrono::system_clock::now().time_since_epoch().count() % 1000000007);
  const std::string query = "/recommend?user=" + httplib::detail::encode_query_param(user) +
                            "&new_only=1&k=" + std::to_string(k);
  std::vector<double> ms, post_ms;
  int missing = 0, gets = 0;
  for (int i = 0; i < n + 5; ++i) {  // 5 warm-up iterations
    nlohmann::json item = {{"id", "bench-new-" + tag + "-" + std::to_string(i)},
                           {"title", "Bench New " + std::to_string(i)},
                           {"description", "a new release measured by query_bench"},
                           {"tags", tags}};
    if (!artist.empty()) item["artist"] = artist;
    const auto t0 = Clock::now();
    auto posted = client.Post("/items", item.dump(), "application/json");
    const auto t1 = Clock::now();
    if (!posted || (posted->status != 201 && posted->status != 200)) {
      std::fprintf(stderr, "query_bench: POST /items failed: %s\n",
                   posted ? (std::to_string(posted->status) + " " + posted->body).c_str() : httplib::to_string(posted.error()).c_str());
      return 1;
    }
    const nlohmann::json created = nlohmann::json::parse(posted->body, nullptr, false);
    const nlohmann::json id = created.is_object() && created.contains("item") ? created["item"].value("id", nlohmann::json()) : nlohmann::json();
    bool found = false;
    Clock::time_point t2;
    while (!found) {
      auto got = client.Get(query.c_str());
      ++gets;
      t2 = Clock::now();
      if (!got || got->status != 200) {
        std::fprintf(stderr, "query_bench: GET %s failed: %s\n", query.c_str(),
                     got ? (std::to_string(got->status) + " " + got->body).c_str() : httplib::to_string(got.error()).c_str());
        return 1;
      }
      const nlohmann::json r = nlohmann::json::parse(got->body, nullptr, false);
      if (r.is_object() && r.contains("results")) {
        for (const auto& x : r["results"]) {
          if ((!id.is_null() && x.value("id", nlohmann::json()) == id) || x.value("key", "") == item["id"]) found = true;
        }
      }
      if (!found && Ms(t0, t2) > timeout_ms) break;
    }
    if (i < 5) continue;
    if (!found) {
      ++missing;
      continue;
    }
    ms.push_back(Ms(t0, t2));
    post_ms.push_back(Ms(t0, t1));
  }
  const nlohmann::json s = Summary(ms), p = Summary(post_ms);
  const nlohmann::json out = {{"mode", "post-latency"}, {"url", url}, {"user", user}, {"n", n}, {"k", k},
                              {"visible", s}, {"post", p}, {"missing", missing}, {"gets", gets},
                              {"timeout_ms", timeout_ms}};
  char text[512];
  std::snprintf(text, sizeof text,
                "POST /items -> in /recommend?new_only=1&k=%d for user %s: p50 %.2f ms  p99 %.2f ms over %zu items "
                "(POST alone p50 %.2f ms, p99 %.2f ms; %d not seen within %.0f ms)\n",
                k, user.c_str(), s["p50_ms"].get<double>(), s["p99_ms"].get<double>(), ms.size(),
                p["p50_ms"].get<double>(), p["p99_ms"].get<double>(), missing, timeout_ms);
  Print(out, json, text);
  return missing == 0 ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Retrieval and serving latency of Mosaic (driven by bench/query.sh)"};
  app.require_subcommand(1);
  app.fallthrough();  // --json may follow the subcommand
  bool json = false;
  app.add_flag("--json", json, "One JSON object on stdout");
  std::string store_dir;
  int64_t items = 0, queries = 0, recall_queries = 500, k = 20;
  double noise = -1, jitter = 0.1;
  auto common = [&](CLI::App* cmd) {
    cmd->add_option("--store", store_dir, "Store with a model version")->required();
    cmd->add_option("--items", items, "Item rows after tiling (default 100000)");
    cmd->add_option("--queries", queries, "Timed queries after 100 warm-up ones (default 2000)");
    cmd->add_option("-k", k, "Results per query (default 20)");
    cmd->add_option("--noise", noise, "Noise of tiled copies, in per-dimension standard deviations (default -1: auto, see the file comment)");
    cmd->add_option("--jitter", jitter, "Scale jitter of tiled copies: uniform in [1-j, 1+j] (default 0.1)");
  };
  auto* exact = app.add_subcommand("exact", "Exact top-k beside FAISS IndexFlatIP, one thread");
  common(exact);
  auto* hnsw = app.add_subcommand("hnsw", "HNSW build, latency and recall per ef");
  int m = 16, ef_construction = 100, threads = 2;
  std::vector<int> efs = {16, 32, 64, 128, 256};
  hnsw->add_option("--store", store_dir, "Store with a model version")->required();
  hnsw->add_option("--items", items, "Item rows after tiling (default 1000000)");
  hnsw->add_option("--queries", queries, "Timed queries per ef (default 1000)");
  hnsw->add_option("--recall-queries", recall_queries, "Queries for recall against exact (default 500)");
  hnsw->add_option("-k", k, "Results per query (default 20)");
  hnsw->add_option("--m", m, "Graph degree (default 16)");
  hnsw->add_option("--ef-construction", ef_construction, "Insertion candidate list (default 100)");
  hnsw->add_option("--ef", efs, "Search candidate lists to sweep")->delimiter(',');
  hnsw->add_option("--threads", threads, "Build threads (default 2)");
  std::string metric = "ip";
  hnsw->add_option("--metric", metric, "Graph space: ip (inner product, the default) or l2 (lifted)")
      ->check(CLI::IsMember({"ip", "l2"}));
  hnsw->add_option("--noise", noise, "Noise of tiled copies (default -1: auto)");
  hnsw->add_option("--jitter", jitter, "Scale jitter of tiled copies (default 0.1)");
  auto* dump = app.add_subcommand("dump", "Write the tiled item vectors and the user vectors as raw float32");
  std::string dump_file;
  common(dump);
  dump->add_option("--to", dump_file, "Output prefix (PREFIX.items, PREFIX.users)")->required();
  auto* post = app.add_subcommand("post-latency", "POST /items -> visible in /recommend?new_only=1");
  std::string url, user, artist;
  std::vector<std::string> tags;
  int n = 200, post_k = 1000;
  double timeout_ms = 5000;
  post->add_option("--url", url, "Server, http://HOST:PORT")->required();
  post->add_option("--user", user, "User key")->required();
  post->add_option("--n", n, "Items posted (after 5 warm-up ones; default 200)");
  post->add_option("--artist", artist, "Artist of the new items");
  post->add_option("--tag", tags, "Tags of the new items (repeatable)");
  post->add_option("-k", post_k, "k of the /recommend request (default 1000)");
  post->add_option("--timeout-ms", timeout_ms, "Give up on an item after this long (default 5000)");
  CLI11_PARSE(app, argc, argv);
  if (exact->parsed()) {
    if (items == 0) items = 100000;
    if (queries == 0) queries = 2000;
  }
  if (hnsw->parsed()) {
    if (items == 0) items = 1000000;
    if (queries == 0) queries = 1000;
  }
  try {
    if (dump->parsed()) return RunDump(store_dir, items == 0 ? 100000 : items, noise, jitter, dump_file);
    if (exact->parsed()) return RunExact(store_dir, items, queries, k, noise, jitter, json);
    if (hnsw->parsed()) {
      return RunHnsw(store_dir, items, queries, recall_queries, k, m, ef_construction, efs, threads, metric, noise, jitter,
                     json);
    }
    return RunPostLatency(url, user, n, artist, tags, post_k, timeout_ms, json);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "query_bench: %s\n", e.what());
    return 1;
  }
}
