#include "ferry/data/profile.h"

#include <cmath>

#include "gtest/gtest.h"

namespace ferry::data {
namespace {

Table OneToTen() {
  Table t;
  Column& x = t.AddColumn("x", ColumnType::kInt64);
  for (int i = 1; i <= 10; ++i) x.AppendInt(i);
  x.AppendNull();
  Column& f = t.AddColumn("f", ColumnType::kFloat64);
  for (int i = 1; i <= 10; ++i) f.AppendDouble(i * 0.5);
  f.AppendDouble(std::nan(""));
  return t;
}

TEST(Profile, NumericStatsMatchNumpyAndPandas) {
  ProfileOptions opts{.bins = 4, .quantiles = {0.0, 0.25, 0.5, 0.9, 1.0}};
  Profile p = ComputeProfile(OneToTen(), opts);
  EXPECT_EQ(p.rows, 11);
  const ColumnProfile* x = p.Find("x");
  ASSERT_NE(x, nullptr);
  EXPECT_EQ(x->type, ColumnType::kInt64);
  EXPECT_EQ(x->count, 10);
  EXPECT_EQ(x->nulls, 1);
  EXPECT_EQ(*x->min, 1.0);
  EXPECT_EQ(*x->max, 10.0);
  EXPECT_EQ(*x->mean, 5.5);
  EXPECT_DOUBLE_EQ(*x->std, std::sqrt(82.5 / 9));  // pandas' Series(range(1, 11)).std()
  // numpy.quantile(range(1, 11), [0, .25, .5, .9, 1]) = [1, 3.25, 5.5, 9.1, 10]
  ASSERT_EQ(x->quantiles.size(), 5u);
  EXPECT_EQ(x->quantiles[0], (std::pair<double, double>{0.0, 1.0}));
  EXPECT_EQ(x->quantiles[1], (std::pair<double, double>{0.25, 3.25}));
  EXPECT_EQ(x->quantiles[2], (std::pair<double, double>{0.5, 5.5}));
  EXPECT_DOUBLE_EQ(x->quantiles[3].second, 9.1);
  EXPECT_EQ(x->quantiles[4], (std::pair<double, double>{1.0, 10.0}));
  // numpy.histogram(range(1, 11), bins=4): edges [1, 3.25, 5.5, 7.75, 10], counts [3, 2, 2, 3]
  EXPECT_EQ(x->histogram.edges, (std::vector<double>{1, 3.25, 5.5, 7.75, 10}));
  EXPECT_EQ(x->histogram.counts, (std::vector<int64_t>{3, 2, 2, 3}));
  EXPECT_EQ(x->distinct, 0);
  EXPECT_TRUE(x->top.empty());

  const ColumnProfile* f = p.Find("f");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->count, 11);  // NaN is a value, not a null...
  EXPECT_EQ(f->nulls, 0);
  EXPECT_EQ(*f->mean, 2.75);  // ...but it is left out of the statistics
  EXPECT_EQ(f->quantiles[1].second, 1.625);
  EXPECT_EQ(f->histogram.counts, (std::vector<int64_t>{3, 2, 2, 3}));
  EXPECT_EQ(p.Find("nope"), nullptr);
}

TEST(Profile, HistogramOfAConstantAndOfEdgeValues) {
  Table t;
  Column& c = t.AddColumn("c", ColumnType::kFloat64);
  for (int i = 0; i < 3; ++i) c.AppendDouble(2.0);
  for (int i = 0; i < 8; ++i) c.AppendNull();
  Column& e = t.AddColumn("e", ColumnType::kFloat64);
  for (double v : {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}) e.AppendDouble(v);
  Profile p = ComputeProfile(t, {.bins = 10});
  const ColumnProfile& cp = *p.Find("c");
  EXPECT_EQ(cp.histogram.edges.front(), 1.5);  // numpy: range (v - 0.5, v + 0.5)
  EXPECT_EQ(cp.histogram.edges.back(), 2.5);
  EXPECT_EQ(cp.histogram.counts, (std::vector<int64_t>{0, 0, 0, 0, 0, 3, 0, 0, 0, 0}));
  EXPECT_FALSE(cp.std.has_value() && !std::isnan(*cp.std) && *cp.std != 0);
  // numpy.histogram([0.0, 0.1, ..., 1.0], bins=10)[0] = [1, 1, 2, 0, 1, 2, 1, 0, 1, 2]: values
  // on an edge in decimal but on the other side of it in binary fall as they do in numpy.
  const ColumnProfile& ep = *p.Find("e");
  EXPECT_EQ(ep.histogram.counts, (std::vector<int64_t>{1, 1, 2, 0, 1, 2, 1, 0, 1, 2}));
  // The same bins applied to the column itself give the same counts.
  EXPECT_EQ(CountIntoBins(t.column("e"), ep.histogram.edges), ep.histogram.counts);
}

TEST(Profile, CountIntoBinsPutsOutsideValuesAtTheEnds) {
  Table t;
  Column& c = t.AddColumn("v", ColumnType::kInt64);
  for (int64_t v : {-100, 0, 1, 2, 3, 4, 100}) c.AppendInt(v);
  c.AppendNull();
  EXPECT_EQ(CountIntoBins(c, {0, 1, 2, 4}), (std::vector<int64_t>{2, 1, 4}));
  EXPECT_TRUE(CountIntoBins(c, {1}).empty());
  Column s("s", ColumnType::kString);
  s.AppendString("a");
  EXPECT_EQ(CountIntoBins(s, {0, 1}), (std::vector<int64_t>{0}));
}

TEST(Profile, StringsAndBools) {
  Table t;
  Column& s = t.AddColumn("plan", ColumnType::kString);
  for (const char* v : {"pro", "free", "team", "free", "pro", "free", "ent"}) s.AppendString(v);
  s.AppendNull();
  Column& b = t.AddColumn("churned", ColumnType::kBool);
  for (int i = 0; i < 7; ++i) b.AppendBool(i % 3 == 0);
  b.AppendNull();
  Profile p = ComputeProfile(t, {.top_k = 3});
  const ColumnProfile& sp = *p.Find("plan");
  EXPECT_EQ(sp.count, 7);
  EXPECT_EQ(sp.nulls, 1);
  EXPECT_EQ(sp.distinct, 4);
  EXPECT_EQ(sp.top, (std::vector<std::pair<std::string, int64_t>>{
                        {"free", 3}, {"pro", 2}, {"ent", 1}}));  // ties by value
  EXPECT_FALSE(sp.mean.has_value());
  EXPECT_TRUE(sp.histogram.counts.empty());

  const ColumnProfile& bp = *p.Find("churned");
  EXPECT_EQ(bp.count, 7);
  EXPECT_EQ(*bp.mean, 3.0 / 7);
  EXPECT_EQ(bp.distinct, 2);
  EXPECT_EQ(bp.top, (std::vector<std::pair<std::string, int64_t>>{{"false", 4}, {"true", 3}}));
}

TEST(Profile, EmptyAndNullColumns) {
  Table t;
  Column& x = t.AddColumn("x", ColumnType::kFloat64);
  x.AppendNull();
  Profile p = ComputeProfile(t);
  const ColumnProfile& c = p.columns[0];
  EXPECT_EQ(c.count, 0);
  EXPECT_EQ(c.nulls, 1);
  EXPECT_FALSE(c.min.has_value());
  EXPECT_TRUE(c.quantiles.empty());
  EXPECT_TRUE(c.histogram.edges.empty());
  EXPECT_EQ(ComputeProfile(Table()).columns.size(), 0u);
}

TEST(Profile, JsonRoundTripIsExact) {
  Table t = OneToTen();
  Column& s = t.AddColumn("s", ColumnType::kString);
  for (int i = 0; i < 11; ++i) s.AppendString(i % 2 ? "a \"b\"" : "c");
  Column& inf = t.AddColumn("inf", ColumnType::kFloat64);
  for (int i = 0; i < 11; ++i) inf.AppendDouble(i == 0 ? INFINITY : 0.1 * i);
  Profile p = ComputeProfile(t, {.threads = 3});
  nlohmann::json j = ProfileToJson(p);
  EXPECT_TRUE(j["columns"][3]["max"].is_null());  // +inf is stored as null
  EXPECT_EQ(j["columns"][0]["quantiles"][2], nlohmann::json::array({0.25, 3.25}));
  absl::StatusOr<Profile> back = ProfileFromJson(nlohmann::json::parse(j.dump()));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(ProfileToJson(*back), j);
  ASSERT_EQ(back->columns.size(), 4u);
  for (size_t i = 0; i < 3; ++i) {
    const ColumnProfile& a = p.columns[i];
    const ColumnProfile& b = back->columns[i];
    EXPECT_EQ(a.name, b.name);
    EXPECT_EQ(a.type, b.type);
    EXPECT_EQ(a.count, b.count);
    EXPECT_EQ(a.nulls, b.nulls);
    EXPECT_EQ(a.min, b.min);
    EXPECT_EQ(a.max, b.max);
    EXPECT_EQ(a.mean, b.mean);
    EXPECT_EQ(a.std, b.std);
    EXPECT_EQ(a.quantiles, b.quantiles);
    EXPECT_EQ(a.histogram.edges, b.histogram.edges);
    EXPECT_EQ(a.histogram.counts, b.histogram.counts);
    EXPECT_EQ(a.distinct, b.distinct);
    EXPECT_EQ(a.top, b.top);
  }
  EXPECT_TRUE(std::isnan(*back->columns[3].max));
  EXPECT_EQ(back->columns[3].histogram.counts, p.columns[3].histogram.counts);

  absl::StatusOr<Profile> bad = ProfileFromJson(nlohmann::json::parse(R"({"columns": [{}]})"));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ProfileFromJson(nlohmann::json::array()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace ferry::data
