#include "ferry/data/profile.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <thread>

#include "ferry/common/parallel.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

// The statistics follow numpy/pandas so that a profile matches what a data scientist computes in
// a notebook: quantiles by numpy's default "linear" method (including its lerp formula), the
// histogram by numpy.histogram's uniform-bin algorithm (edges from linspace, last bin closed,
// a constant column gets the range [v - 0.5, v + 0.5]), std with n - 1 as pandas.

namespace ferry::data {
namespace {

// numpy's _lerp: exact at both ends and monotonic.
double Lerp(double a, double b, double t) {
  double diff = b - a;
  return t >= 0.5 ? b - diff * (1 - t) : a + diff * t;
}

std::vector<double> LinSpace(double start, double stop, int num) {
  std::vector<double> y(static_cast<size_t>(num));
  double div = num - 1;
  double step = (stop - start) / div;
  for (int i = 0; i < num; ++i) {
    y[static_cast<size_t>(i)] = step == 0 ? (i / div) * (stop - start) + start : i * step + start;
  }
  if (num > 1) y.back() = stop;
  return y;
}

// Statistics of the non-null, non-NaN values of `data` (a column's raw storage), in three passes
// and without copying the column: (1) count, min, max, sum; (2) squared deviations, the
// histogram, and counts in fine bins; (3) the values of the fine bins that hold the order
// statistics the quantiles need, each bin then selected on its own (small) copy.
template <typename T>
void ProfileValues(const T* data, const uint8_t* valid, size_t n, const ProfileOptions& opts,
                   ColumnProfile* p) {
  auto value = [data](size_t i) { return static_cast<double>(data[i]); };
  // Pass 1 in locals only (nothing here is captured by reference, so it all stays in registers).
  size_t m = 0;
  double lo = INFINITY, hi = -INFINITY, flo = INFINITY, fhi = -INFINITY;
  long double sum = 0;
  {
    size_t m1 = 0;
    double lo1 = INFINITY, hi1 = -INFINITY, flo1 = INFINITY, fhi1 = -INFINITY;
    long double sum1 = 0;
    for (size_t i = 0; i < n; ++i) {
      double x = value(i);
      if (!valid[i] || std::isnan(x)) continue;
      ++m1;
      lo1 = std::min(lo1, x);
      hi1 = std::max(hi1, x);
      sum1 += x;
      if (std::isfinite(x)) {
        flo1 = std::min(flo1, x);
        fhi1 = std::max(fhi1, x);
      }
    }
    m = m1;
    lo = lo1;
    hi = hi1;
    flo = flo1;
    fhi = fhi1;
    sum = sum1;
  }
  if (m == 0) return;
  double mean = static_cast<double>(sum / static_cast<long double>(m));
  p->min = lo;
  p->max = hi;
  p->mean = mean;

  // Histogram of the finite values (numpy.histogram with bins=opts.bins).
  size_t bins = 0;
  double first = flo, last = fhi, denom = 1;
  if (opts.bins > 0 && flo <= fhi) {
    if (first == last) {
      first -= 0.5;
      last += 0.5;
    }
    bins = static_cast<size_t>(opts.bins);
    p->histogram.edges = LinSpace(first, last, opts.bins + 1);
    p->histogram.counts.assign(bins, 0);
    // numpy divides by (last - first); a multiplication is as good for the first guess, which
    // the comparisons with the edges below correct to numpy's bin.
    denom = static_cast<double>(bins) / (last - first);
  }
  const double* edges = p->histogram.edges.data();
  int64_t* counts = p->histogram.counts.data();

  // Fine bins for the quantiles: a monotone map of the values (-inf first, +inf last).
  constexpr size_t kFine = 4096;
  std::vector<int64_t> fine(opts.quantiles.empty() ? 0 : kFine, 0);
  double fscale = flo < fhi ? static_cast<double>(kFine) / (fhi - flo) : 0.0;
  if (!std::isfinite(fscale)) fscale = 0.0;
  auto fine_bin = [flo, fhi, fscale](double x) -> size_t {
    if (x < flo) return 0;
    if (x > fhi) return kFine - 1;
    double f = (x - flo) * fscale;
    return f >= static_cast<double>(kFine - 1) ? kFine - 1 : static_cast<size_t>(f);
  };

  long double ss = 0;
  for (size_t i = 0; i < n; ++i) {
    double x = value(i);
    if (!valid[i] || std::isnan(x)) continue;
    double dx = x - mean;
    ss += static_cast<long double>(dx) * dx;
    if (!fine.empty()) ++fine[fine_bin(x)];
    if (bins > 0 && std::isfinite(x)) {
      size_t b = static_cast<size_t>((x - first) * denom);
      if (b >= bins) b = bins - 1;
      if (x < edges[b] && b > 0) --b;
      if (b != bins - 1 && x >= edges[b + 1]) ++b;
      ++counts[b];
    }
  }
  if (m >= 2) p->std = std::sqrt(static_cast<double>(ss / static_cast<long double>(m - 1)));
  if (opts.quantiles.empty()) return;

  // numpy's "linear" method: each quantile needs the order statistics i and i + 1.
  std::vector<std::pair<double, size_t>> at;  // (gamma, lower index) per quantile
  std::vector<size_t> need;
  double dn = static_cast<double>(m);
  for (double q : opts.quantiles) {
    double vi = dn * q + (1 + q * (1 - 1 - 1)) - 1;
    double prev = std::floor(vi);
    double gamma = vi - prev;
    size_t i;
    if (vi <= 0) {
      i = 0;
      gamma = 0;
    } else if (vi >= dn - 1) {
      i = m - 1;
      gamma = 0;
    } else {
      i = static_cast<size_t>(prev);
    }
    at.emplace_back(gamma, i);
    need.push_back(i);
    if (i + 1 < m) need.push_back(i + 1);
  }
  // The fine bin of every needed order statistic, and its rank inside that bin.
  std::vector<int64_t> start(kFine);
  int64_t cum = 0;
  for (size_t b = 0; b < kFine; ++b) {
    start[b] = cum;
    cum += fine[b];
  }
  std::vector<int32_t> slot(kFine, -1);
  std::vector<std::vector<double>> gathered;
  std::vector<std::pair<size_t, size_t>> where(need.size());  // (slot, rank in bin)
  for (size_t k = 0; k < need.size(); ++k) {
    size_t b = static_cast<size_t>(
        std::upper_bound(start.begin(), start.end(), static_cast<int64_t>(need[k])) -
        start.begin() - 1);
    if (slot[b] < 0) {
      slot[b] = static_cast<int32_t>(gathered.size());
      gathered.emplace_back().reserve(static_cast<size_t>(fine[b]));
    }
    where[k] = {static_cast<size_t>(slot[b]), need[k] - static_cast<size_t>(start[b])};
  }
  for (size_t i = 0; i < n; ++i) {
    double x = value(i);
    if (!valid[i] || std::isnan(x)) continue;
    int32_t s = slot[fine_bin(x)];
    if (s >= 0) gathered[static_cast<size_t>(s)].push_back(x);
  }
  std::vector<double> stat(need.size());
  for (size_t k = 0; k < need.size(); ++k) {
    std::vector<double>& g = gathered[where[k].first];
    auto nth = g.begin() + static_cast<ptrdiff_t>(where[k].second);
    std::nth_element(g.begin(), nth, g.end());
    stat[k] = *nth;
  }
  auto order_stat = [&](size_t i) {
    return stat[static_cast<size_t>(std::find(need.begin(), need.end(), i) - need.begin())];
  };
  for (size_t k = 0; k < opts.quantiles.size(); ++k) {
    auto [gamma, i] = at[k];
    double a = order_stat(i), b = i + 1 < m ? order_stat(i + 1) : a;
    p->quantiles.emplace_back(opts.quantiles[k], Lerp(a, b, gamma));
  }
}

void ProfileNumeric(const Column& c, const ProfileOptions& opts, ColumnProfile* p) {
  if (c.type() == ColumnType::kFloat64) {
    ProfileValues(c.doubles().data(), c.valid().data(), c.size(), opts, p);
  } else {
    ProfileValues(c.ints().data(), c.valid().data(), c.size(), opts, p);
  }
}

void ProfileCategories(std::vector<std::pair<std::string, int64_t>> counts, int top_k,
                       ColumnProfile* p) {
  std::erase_if(counts, [](const auto& e) { return e.second == 0; });
  p->distinct = static_cast<int64_t>(counts.size());
  auto order = [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  };
  size_t k = std::min(counts.size(), static_cast<size_t>(std::max(top_k, 0)));
  std::partial_sort(counts.begin(), counts.begin() + static_cast<ptrdiff_t>(k), counts.end(),
                    order);
  counts.resize(k);
  p->top = std::move(counts);
}

ColumnProfile ProfileColumn(const Column& c, const ProfileOptions& opts) {
  ColumnProfile p;
  p.name = c.name();
  p.type = c.type();
  p.nulls = static_cast<int64_t>(c.null_count());
  p.count = static_cast<int64_t>(c.size()) - p.nulls;
  if (c.type() == ColumnType::kString) {
    std::vector<int64_t> n(c.dictionary().size(), 0);
    for (int32_t code : c.codes()) {
      if (code >= 0) ++n[static_cast<size_t>(code)];
    }
    std::vector<std::pair<std::string, int64_t>> counts;
    counts.reserve(n.size());
    for (size_t i = 0; i < n.size(); ++i) counts.emplace_back(c.dictionary()[i], n[i]);
    ProfileCategories(std::move(counts), opts.top_k, &p);
    return p;
  }
  ProfileNumeric(c, opts, &p);
  if (c.type() == ColumnType::kBool) {
    int64_t ones = 0;
    for (size_t i = 0; i < c.size(); ++i) ones += c.valid()[i] && c.ints()[i] != 0;
    ProfileCategories({{"true", ones}, {"false", p.count - ones}}, opts.top_k, &p);
  }
  return p;
}

nlohmann::json Num(double v) {
  if (!std::isfinite(v)) return nullptr;
  return v;
}

double NumFrom(const nlohmann::json& j) {
  if (j.is_null()) return std::nan("");
  return j.get<double>();
}

}  // namespace

const ColumnProfile* Profile::Find(std::string_view name) const {
  for (const ColumnProfile& c : columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

Profile ComputeProfile(const Table& table, const ProfileOptions& opts) {
  Profile p;
  p.rows = static_cast<int64_t>(table.num_rows());
  p.columns.resize(table.num_columns());
  ParallelFor(table.num_columns(), ThreadCount(opts.threads),
              [&](size_t j) { p.columns[j] = ProfileColumn(table.column(j), opts); });
  return p;
}

std::vector<int64_t> CountIntoBins(const Column& column, const std::vector<double>& edges) {
  if (edges.size() < 2) return {};
  std::vector<int64_t> counts(edges.size() - 1, 0);
  if (column.type() == ColumnType::kString) return counts;
  // Inner edges decide the bin: below edges[1] is bin 0, at or above edges[bins-1] the last bin.
  auto inner_begin = edges.begin() + 1, inner_end = edges.end() - 1;
  for (size_t i = 0; i < column.size(); ++i) {
    if (column.is_null(i)) continue;
    double x = column.AsDouble(i);
    if (std::isnan(x)) continue;
    ++counts[static_cast<size_t>(std::upper_bound(inner_begin, inner_end, x) - inner_begin)];
  }
  return counts;
}

nlohmann::json ProfileToJson(const Profile& profile) {
  nlohmann::json cols = nlohmann::json::array();
  for (const ColumnProfile& c : profile.columns) {
    nlohmann::json j = {{"name", c.name},
                        {"type", std::string(TypeName(c.type))},
                        {"count", c.count},
                        {"nulls", c.nulls}};
    if (IsNumeric(c.type)) {
      if (c.min) j["min"] = Num(*c.min);
      if (c.max) j["max"] = Num(*c.max);
      if (c.mean) j["mean"] = Num(*c.mean);
      if (c.std) j["std"] = Num(*c.std);
      nlohmann::json q = nlohmann::json::array();
      for (auto [k, v] : c.quantiles) q.push_back({Num(k), Num(v)});
      j["quantiles"] = std::move(q);
      nlohmann::json edges = nlohmann::json::array();
      for (double e : c.histogram.edges) edges.push_back(Num(e));
      j["histogram"] = {{"edges", std::move(edges)}, {"counts", c.histogram.counts}};
    }
    if (c.type == ColumnType::kString || c.type == ColumnType::kBool) {
      j["distinct"] = c.distinct;
      nlohmann::json top = nlohmann::json::array();
      for (const auto& [v, n] : c.top) top.push_back({v, n});
      j["top"] = std::move(top);
    }
    cols.push_back(std::move(j));
  }
  return {{"rows", profile.rows}, {"columns", std::move(cols)}};
}

absl::StatusOr<Profile> ProfileFromJson(const nlohmann::json& json) {
  Profile p;
  std::string where = "profile";
  try {
    if (!json.is_object() || !json.contains("columns") || !json["columns"].is_array()) {
      return absl::InvalidArgumentError(
          "profile JSON: expected an object with \"rows\" and a \"columns\" array");
    }
    p.rows = json.value("rows", int64_t{0});
    size_t i = 0;
    for (const nlohmann::json& j : json["columns"]) {
      where = fmt::format("profile columns[{}]", i++);
      ColumnProfile c;
      c.name = j.at("name").get<std::string>();
      FERRY_ASSIGN_OR_RETURN(c.type, ParseTypeName(j.at("type").get<std::string>()));
      c.count = j.at("count").get<int64_t>();
      c.nulls = j.at("nulls").get<int64_t>();
      for (auto [key, field] : {std::pair{"min", &c.min}, std::pair{"max", &c.max},
                                std::pair{"mean", &c.mean}, std::pair{"std", &c.std}}) {
        if (j.contains(key)) *field = NumFrom(j[key]);
      }
      if (j.contains("quantiles")) {
        for (const nlohmann::json& q : j["quantiles"]) {
          c.quantiles.emplace_back(NumFrom(q.at(0)), NumFrom(q.at(1)));
        }
      }
      if (j.contains("histogram")) {
        for (const nlohmann::json& e : j["histogram"].at("edges")) {
          c.histogram.edges.push_back(NumFrom(e));
        }
        c.histogram.counts = j["histogram"].at("counts").get<std::vector<int64_t>>();
        if (!c.histogram.edges.empty() &&
            c.histogram.counts.size() + 1 != c.histogram.edges.size()) {
          return absl::InvalidArgumentError(
              fmt::format("{}: histogram has {} edges but {} counts; edges must be counts + 1",
                          where, c.histogram.edges.size(), c.histogram.counts.size()));
        }
      }
      c.distinct = j.value("distinct", int64_t{0});
      if (j.contains("top")) {
        for (const nlohmann::json& t : j["top"]) {
          c.top.emplace_back(t.at(0).get<std::string>(), t.at(1).get<int64_t>());
        }
      }
      p.columns.push_back(std::move(c));
    }
  } catch (const nlohmann::json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("{}: malformed profile JSON: {}", where, e.what()));
  }
  return p;
}

}  // namespace ferry::data
