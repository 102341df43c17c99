// The served form of the model's second version (fusion/second_version.h): EASE^R's factors are
// exact at full rank through either side, a placed item gets the vector the fit gave it, the served
// scores are the blend the harness measures, and the record round-trips and refuses damage.
#include "fusion/second_version.h"

#include <gtest/gtest.h>

#include <cmath>
#include <stdexcept>

#include "tests/eval_fixtures.h"

namespace mosaic::fusion {
namespace {

// EASE^R's score of every item a user did not play, from the factors.
double FactoredScore(const EaseFactors& f, const std::vector<uint32_t>& played, uint32_t item) {
  double s = 0;
  for (uint32_t j : played) {
    for (uint32_t k = 0; k < f.rank; ++k) s += double(f.w[size_t(j) * f.rank + k]) * f.e[size_t(item) * f.rank + k];
  }
  return s;
}

void ExpectExactAtFullRank(uint32_t users, uint32_t items) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(users, items, 3, &train, &cold);
  auto ease = MakeEase(20.0);
  ease->Fit(data, train, {});
  const EaseFactors f = FactorEase(data, train, 20.0, 10000);
  std::vector<std::vector<uint32_t>> played(users);
  for (uint32_t t : train) played[data.interactions[t].user].push_back(data.interactions[t].item);
  double worst = 0;
  for (uint32_t u = 0; u < users; ++u) {
    const std::vector<float> exact = Score(*ease, u);
    for (uint32_t i = 0; i < items; ++i) {
      if (std::find(played[u].begin(), played[u].end(), i) != played[u].end()) continue;
      worst = std::max(worst, std::fabs(FactoredScore(f, played[u], i) - exact[i]));
    }
  }
  EXPECT_LT(worst, 1e-4) << users << " users, " << items << " items, rank " << f.rank;
}

TEST(SecondVersionTest, EaseFactorsAreExactAtFullRankThroughEitherSide) {
  ExpectExactAtFullRank(12, 60);  // fewer users: through the users x users system
  ExpectExactAtFullRank(80, 30);  // fewer items: through the items x items one
}

TEST(SecondVersionTest, TheCutKeepsTheRankAskedFor) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(30, 90, 3, &train, &cold);
  const EaseFactors f = FactorEase(data, train, 20.0, 5);
  EXPECT_EQ(f.rank, 5u);
  EXPECT_EQ(f.w.size(), 90u * 5);
  EXPECT_THROW(FactorEase(data, train, 0.0, 5), std::invalid_argument);
  EXPECT_THROW(FactorEase(data, train, 1.0, 0), std::invalid_argument);
  SecondVersionOptions small;
  small.max_ease_side = 20;  // 30 users and 72 items with plays
  EXPECT_NE(SecondVersionFits(data, train, small).find("EASE^R needs"), std::string::npos);
  EXPECT_THROW(FitSecondVersion(data, train, {}, small, nullptr), std::invalid_argument);
  small.max_ease_side = 20000;
  small.max_kernel_items = 50;
  EXPECT_NE(SecondVersionFits(data, train, small).find("content kernel"), std::string::npos);
  EXPECT_EQ(SecondVersionFits(data, train, SecondVersionOptions()), "");
}

class FittedSecondVersion : public ::testing::Test {
 protected:
  void SetUp() override {
    data_ = Synthetic(30, 120, 3, &train_, &cold_);
    model_ = FitSecondVersion(data_, train_, {}, SecondVersionOptions(), &report_);
  }
  EvalData data_;
  std::vector<uint32_t> train_, cold_;
  SecondVersionReport report_;
  SecondVersion model_;
};

TEST_F(FittedSecondVersion, PlacingAnItemByItsContentGivesTheFittedVector) {
  ASSERT_FALSE(cold_.empty());
  const ContentKernelState& s = model_.content;
  ASSERT_EQ(s.modalities, std::vector<std::string>{"text"});
  // The cold items' KG features, as a caller finds them from the item's triples.
  for (uint32_t item : cold_) {
    EXPECT_FALSE(model_.has_plays[item]);
    std::vector<uint32_t> kg;
    for (const auto& t : data_.kg_triples) {
      for (size_t k = 0; k < s.kg_keys.size(); ++k) {
        const KgFeatureKey& key = s.kg_keys[k];
        if ((t.head == item && !key.backward && key.relation == t.relation && key.node == t.tail) ||
            (t.tail == item && key.backward && key.relation == t.relation && key.node == t.head)) {
          kg.push_back(uint32_t(k));
        }
      }
    }
    std::vector<float> vec, proj;
    model_.Place({data_.modalities.at("text").Row(item)}, kg, &vec, &proj);
    ASSERT_EQ(vec.size(), model_.dim());
    for (size_t k = 0; k < vec.size(); ++k) EXPECT_NEAR(vec[k], model_.items[item * model_.dim() + k], 1e-4) << item;
    for (size_t k = 0; k < proj.size(); ++k) {
      EXPECT_NEAR(proj[k], model_.projection[item * model_.projection_dim() + k], 1e-4) << item;
    }
  }
}

TEST_F(FittedSecondVersion, ServedScoresRankUsersGroupFirstAndAUserFromHistoryNeedsNoRow) {
  EXPECT_GT(model_.ease_rank, 0u);
  EXPECT_EQ(report_.blend.grid.size(), 6u);
  // A user who was never fitted: the projection rows of two items of group 1.
  const size_t pd = model_.projection_dim(), d = model_.dim();
  std::vector<float> rows(2 * pd);
  std::copy_n(&model_.projection[1 * pd], pd, &rows[0]);
  std::copy_n(&model_.projection[4 * pd], pd, &rows[pd]);
  const std::vector<float> user = model_.User(rows.data(), 2);
  auto score = [&](uint32_t i) {
    double s = 0;
    for (size_t k = 0; k < d; ++k) s += double(user[k]) * model_.items[i * d + k];
    return s;
  };
  double own = 0, other = 0, own_cold = 0, other_cold = 0;
  int n_own = 0, n_other = 0, n_own_cold = 0, n_other_cold = 0;
  for (uint32_t i = 0; i < data_.num_items; ++i) {
    if (i == 1 || i == 4) continue;
    const bool mine = i % 3 == 1, is_cold = !model_.has_plays[i];
    (is_cold ? (mine ? own_cold : other_cold) : (mine ? own : other)) += score(i);
    ++(is_cold ? (mine ? n_own_cold : n_other_cold) : (mine ? n_own : n_other));
  }
  EXPECT_GT(own / n_own, other / n_other);
  EXPECT_GT(own_cold / n_own_cold, other_cold / n_other_cold);
  const std::vector<float> nobody = model_.User(nullptr, 0);
  for (float x : nobody) EXPECT_EQ(x, 0.0f);
}

TEST_F(FittedSecondVersion, TheRecordRoundTripsAndRefusesDamage) {
  const std::string bytes = model_.Save();
  const SecondVersion back = SecondVersion::Load(bytes);
  EXPECT_EQ(back.items, model_.items);
  EXPECT_EQ(back.projection, model_.projection);
  EXPECT_EQ(back.content.coefficients, model_.content.coefficients);
  EXPECT_EQ(back.Save(), bytes);
  EXPECT_EQ(back.count_k, model_.count_k);
  EXPECT_EQ(back.offset_weight, model_.offset_weight);
  EXPECT_TRUE(back.offset_column);
  // A record written before the offset: its magic, no b, and item vectors one column narrower; it
  // loads with that width and keeps its form when saved again.
  SecondVersion narrow = model_;
  narrow.offset_column = false;
  narrow.offset_weight = 0;
  const size_t d = model_.dim(), offset_at = model_.ease_rank + model_.content_rank + 1;
  narrow.items.clear();
  for (size_t i = 0; i < model_.num_items; ++i) {
    for (size_t k = 0; k < d; ++k) {
      if (k != offset_at) narrow.items.push_back(model_.items[i * d + k]);
    }
  }
  const std::string before_offset = narrow.Save();
  EXPECT_EQ(before_offset.substr(0, 8), "MOSAICvk");
  const SecondVersion old = SecondVersion::Load(before_offset);
  EXPECT_FALSE(old.offset_column);
  EXPECT_EQ(old.dim(), d - 1);
  EXPECT_EQ(old.items, narrow.items);
  EXPECT_EQ(old.User(nullptr, 0).size(), d - 1);
  EXPECT_EQ(old.Save(), before_offset);
  // Before count_k existed: the earlier magic and no k, read as k = 0.
  std::string earlier = before_offset;
  earlier.replace(0, 8, "MOSAICv2");
  earlier.erase(8 + 3 * 4 + 3 * 8, 8);
  EXPECT_EQ(SecondVersion::Load(earlier).count_k, 0);
  EXPECT_THROW(SecondVersion::Load(bytes.substr(0, bytes.size() - 3)), std::runtime_error);
  EXPECT_THROW(SecondVersion::Load(bytes + "x"), std::runtime_error);
  EXPECT_THROW(SecondVersion::Load("not a model"), std::runtime_error);
  std::string bad = bytes;
  bad[8] ^= 0x7f;  // num_items no longer fits the arrays
  EXPECT_THROW(SecondVersion::Load(bad), std::runtime_error);
}

TEST(SecondVersionTest, TheServedPeerIsTheMeasuredBlend) {
  std::vector<uint32_t> train, cold;
  const EvalData data = Synthetic(24, 90, 3, &train, &cold);
  SecondVersionOptions options;
  options.blend_weights = {0.5};
  auto served = MakeServedSecondVersion("Mosaic v2 (served)", options);
  served->Fit(data, train, {});
  ASSERT_NE(served->tuning(), nullptr);
  EXPECT_NE(served->tuning()->grid[0].setting.find("weight=0.5"), std::string::npos);
  // On every item the user did not play (with plays or not) the served score is z_ease + v(n_i)
  // z_content - b (v(n_i) - w): the blend of the exact models at the chosen points, standardised over
  // every item as MakeBlend does, with the content's weight of an item's play count and its offset.
  const std::string& setting = served->tuning()->grid[0].setting;
  const double lambda = std::stod(setting.substr(setting.find("lambda=") + 7));
  auto ease = MakeEase(lambda);
  ease->Fit(data, train, {});
  KernelPoint point;
  auto value = [&](const std::string& name) { return std::stod(setting.substr(setting.find(" " + name + "=") + name.size() + 2)); };
  point.g = value("g");
  point.w_text = value("w_text");
  point.lambda = value("lambda");
  point.rank = uint32_t(value("rank"));
  point.pop = value("pop");
  auto kernel = MakeContentKernelAt("kernel", true, point);
  kernel->Fit(data, train, {});
  SecondVersion curve;
  curve.blend_weight = 0.5;
  curve.cold_weight = value("c");
  curve.count_k = std::stod(setting.substr(setting.find(" k=") + 3));
  curve.offset_weight = value("b");
  std::vector<uint64_t> plays(90, 0);
  for (uint32_t t : train) ++plays[data.interactions[t].item];
  std::vector<uint8_t> has_plays(90, 0);
  for (uint32_t i = 0; i < 90; ++i) has_plays[i] = plays[i] > 0;
  for (uint32_t u = 0; u < 24; ++u) {
    const std::vector<float> s = Score(*served, u);
    std::vector<float> b = Score(*ease, u), z_content = Score(*kernel, u);
    Standardise(&b);
    Standardise(&z_content);
    for (uint32_t i = 0; i < 90; ++i) {
      const double v = curve.ContentWeight(plays[i]);
      b[i] += float(v * z_content[i] + curve.Offset(v));
    }
    std::vector<uint8_t> mine(90, 0);
    for (uint32_t t : train) {
      if (data.interactions[t].user == u) mine[data.interactions[t].item] = 1;
    }
    for (uint32_t i = 0; i < 90; ++i) {
      if (mine[i]) continue;
      EXPECT_NEAR(s[i], b[i], 1e-3) << "user " << u << " item " << i << (has_plays[i] ? "" : " (no plays)");
    }
  }
}

// v(n): c without plays, w with k = 0, and from c towards w as plays come with k > 0.
TEST(SecondVersionTest, TheContentWeightMovesFromColdToWarmWithPlays) {
  SecondVersion v;
  v.blend_weight = 0.1;
  v.cold_weight = 2;
  EXPECT_EQ(v.ContentWeight(0), 2);
  EXPECT_EQ(v.ContentWeight(1), 0.1);  // k = 0
  v.count_k = 3;
  EXPECT_EQ(v.ContentWeight(0), 2);
  EXPECT_NEAR(v.ContentWeight(3), 0.1 + 1.9 / 2, 1e-12);
  EXPECT_GT(v.ContentWeight(1), v.ContentWeight(2));
  EXPECT_NEAR(v.ContentWeight(1000000), 0.1, 1e-5);
  // The offset: none at w, -b per unit of weight above it.
  v.offset_weight = 2;
  EXPECT_EQ(v.Offset(0.1), 0);
  EXPECT_NEAR(v.Offset(v.ContentWeight(0)), -2 * 1.9, 1e-12);
}

// The pseudo-few-shot stage measures k = 0 first and then every (c, k), each with its b; the chosen
// point is in the model and in the tuning's setting; it has the best pseudo-few-shot Recall@20 among
// the points within the tolerance on both warm metrics; without the stage k and b are 0.
TEST_F(FittedSecondVersion, ThePseudoFewShotStageChoosesTheContentWeightByPlayCount) {
  const SecondVersionOptions options;
  ASSERT_EQ(report_.few_plays.grid.size(), 1 + options.few_play_ks.size() * options.few_play_weights.size());
  EXPECT_EQ(report_.few_plays.grid[0].setting, "k=0");
  const FewPlayPoint& kept = report_.few_plays.grid[report_.few_plays.chosen];
  const FewPlayPoint& base = report_.few_plays.grid[0];
  EXPECT_GE(kept.warm_recall20, base.warm_recall20 * (1 - options.few_play_warm_tolerance));
  EXPECT_GE(kept.warm_ndcg20, base.warm_ndcg20 * (1 - options.few_play_warm_tolerance));
  for (const FewPlayPoint& p : report_.few_plays.grid) {
    const bool guarded = p.warm_recall20 >= base.warm_recall20 * (1 - options.few_play_warm_tolerance) &&
                         p.warm_ndcg20 >= base.warm_ndcg20 * (1 - options.few_play_warm_tolerance);
    if (guarded) {
      EXPECT_LE(p.few_recall20, kept.few_recall20) << p.setting;
    }
  }
  const std::string& chosen = kept.setting;
  if (model_.count_k > 0) {
    EXPECT_NE(chosen.find("c="), std::string::npos) << chosen;
    EXPECT_EQ(std::stod(chosen.substr(chosen.find(" b=") + 3)), model_.offset_weight) << chosen;
  } else {
    EXPECT_EQ(chosen, "k=0");
    EXPECT_EQ(model_.offset_weight, 0);
  }
  for (size_t g = 1; g < report_.few_plays.grid.size(); ++g) {
    EXPECT_NE(report_.few_plays.grid[g].setting.find(" b="), std::string::npos) << report_.few_plays.grid[g].setting;
  }
  SecondVersionOptions without;
  without.few_play_share = 0;
  SecondVersionReport report;
  const SecondVersion plain = FitSecondVersion(data_, train_, {}, without, &report);
  EXPECT_TRUE(report.few_plays.grid.empty());
  EXPECT_EQ(plain.count_k, 0);
  EXPECT_EQ(plain.offset_weight, 0);
}

// With fewer users measured than have held-out plays, the stage still measures every point on those
// it drew, and the same seed draws the same users.
TEST_F(FittedSecondVersion, TheFewPlayStageMeasuresAtMostItsCapOfUsers) {
  SecondVersionOptions capped;
  capped.few_play_max_users = 2;
  SecondVersionReport first, second;
  FitSecondVersion(data_, train_, {}, capped, &first);
  FitSecondVersion(data_, train_, {}, capped, &second);
  ASSERT_EQ(first.few_plays.grid.size(), 1 + capped.few_play_ks.size() * capped.few_play_weights.size());
  ASSERT_EQ(first.few_plays.grid.size(), second.few_plays.grid.size());
  for (size_t g = 0; g < first.few_plays.grid.size(); ++g) {
    EXPECT_EQ(first.few_plays.grid[g].warm_recall20, second.few_plays.grid[g].warm_recall20);
    EXPECT_EQ(first.few_plays.grid[g].few_recall20, second.few_plays.grid[g].few_recall20);
  }
  EXPECT_EQ(first.few_plays.chosen, second.few_plays.chosen);
}

}  // namespace
}  // namespace mosaic::fusion
