#include "ferry/data/drift.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <numbers>
#include <numeric>
#include <unordered_map>
#include <utility>

#include "ferry/common/parallel.h"

// The sample-level statistics follow scipy 1.10 branch for branch (which algorithm for which
// sizes), so that a p-value here is the p-value a data scientist gets in a notebook; the
// algorithms themselves are the published ones (Hodges 1958 and Viehmann 2021 for the exact
// two-sample distribution, Marsaglia-Tsang-Wang 2003 and Pelz-Good 1976 for the Kolmogorov
// distribution, Smirnov's formula for the one-sided tail), written for this file.

namespace ferry::data {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

// ---- Sorting --------------------------------------------------------------------------------

// The IEEE bits of a double mapped so that unsigned order is numeric order.
uint64_t SortKey(double x) {
  uint64_t b = std::bit_cast<uint64_t>(x);
  return (b >> 63) != 0 ? ~b : b | (uint64_t{1} << 63);
}
double FromSortKey(uint64_t k) {
  return std::bit_cast<double>((k >> 63) != 0 ? k & ~(uint64_t{1} << 63) : ~k);
}

// LSD radix sort of doubles by their keys, 11 bits a pass, in place with one scratch buffer.
// The keys live in the doubles' own storage (copied bit for bit with memcpy), so a sort of n
// values allocates n * 8 bytes once. Passes where every key has the same digit are skipped
// (common for data of one sign and a narrow range).
void RadixSortInPlace(std::vector<double>* values) {
  constexpr int kBits = 11, kPasses = 6;
  constexpr size_t kBuckets = size_t{1} << kBits;
  size_t n = values->size();
  if (n < 256) {
    std::sort(values->begin(), values->end());
    return;
  }
  auto load = [](const double* p) {
    uint64_t k;
    std::memcpy(&k, p, sizeof k);
    return k;
  };
  auto store = [](double* p, uint64_t k) { std::memcpy(p, &k, sizeof k); };
  double* data = values->data();
  std::vector<size_t> hist(kBuckets * kPasses, 0);
  for (size_t i = 0; i < n; ++i) {
    uint64_t k = SortKey(data[i]);
    store(&data[i], k);
    for (int p = 0; p < kPasses; ++p) ++hist[p * kBuckets + ((k >> (p * kBits)) & (kBuckets - 1))];
  }
  // Not value-initialised: zeroing n doubles costs as much as a radix pass.
  std::unique_ptr<double[]> scratch(new double[n]);
  double* src = data;
  double* dst = scratch.get();
  for (int p = 0; p < kPasses; ++p) {
    size_t* h = &hist[p * kBuckets];
    if (std::any_of(h, h + kBuckets, [n](size_t c) { return c == n; })) continue;
    size_t sum = 0;
    for (size_t b = 0; b < kBuckets; ++b) {
      size_t c = h[b];
      h[b] = sum;
      sum += c;
    }
    int shift = p * kBits;
    for (size_t i = 0; i < n; ++i) {
      uint64_t k = load(&src[i]);
      store(&dst[h[(k >> shift) & (kBuckets - 1)]++], k);
    }
    std::swap(src, dst);
  }
  for (size_t i = 0; i < n; ++i) data[i] = FromSortKey(load(&src[i]));
}

// ---- Distributions --------------------------------------------------------------------------

// P(D+_n >= x), the one-sided one-sample tail (= scipy.special.smirnov(n, x)), by Smirnov's
// formula x * sum_{j=0}^{floor(n(1-x))} C(n,j) (x + j/n)^(j-1) (1 - x - j/n)^(n-j), every term in
// logarithms (all terms are positive, so there is no cancellation).
double SmirnovSf(int64_t n, double x) {
  if (!(x > 0)) return 1.0;
  if (x >= 1) return 0.0;
  double dn = static_cast<double>(n);
  double lgn = std::lgamma(dn + 1);
  double lx = std::log(x);
  int64_t last = static_cast<int64_t>(std::floor(dn * (1 - x)));
  long double sum = 0;
  for (int64_t j = 0; j <= last; ++j) {
    double dj = static_cast<double>(j);
    if (1 - x - dj / dn <= 0) continue;  // a zero factor (only possible at j = last)
    double lterm = lgn - std::lgamma(dj + 1) - std::lgamma(dn - dj + 1) +
                   (dj - 1) * std::log(x + dj / dn) + (dn - dj) * std::log1p(-x - dj / dn) + lx;
    sum += std::exp(lterm);
  }
  return std::clamp(static_cast<double>(sum), 0.0, 1.0);
}

// A square matrix scaled by 2^exponent, for the Durbin matrix power.
struct ScaledMatrix {
  size_t m = 0;
  std::vector<double> a;  // row-major m x m
  int exponent = 0;
};

ScaledMatrix Multiply(const ScaledMatrix& x, const ScaledMatrix& y) {
  ScaledMatrix r{x.m, std::vector<double>(x.m * x.m, 0.0), x.exponent + y.exponent};
  size_t m = x.m;
  for (size_t i = 0; i < m; ++i) {
    for (size_t k = 0; k < m; ++k) {
      double v = x.a[i * m + k];
      if (v == 0) continue;
      const double* yr = &y.a[k * m];
      double* rr = &r.a[i * m];
      for (size_t j = 0; j < m; ++j) rr[j] += v * yr[j];
    }
  }
  // Keep the entries near 1 so that high powers neither overflow nor underflow.
  double big = 0;
  for (double v : r.a) big = std::max(big, std::abs(v));
  if (big > 0) {
    int e = std::ilogb(big);
    if (e > 64 || e < -64) {
      for (double& v : r.a) v = std::ldexp(v, -e);
      r.exponent += e;
    }
  }
  return r;
}

// P(D_n < d) of the two-sided one-sample statistic by Durbin's matrix formula as Marsaglia, Tsang
// and Wang evaluate it: n!/n^n * (H^n)[k-1][k-1] with k = ceil(n d), h = k - n d, m = 2k - 1.
double DurbinCdf(int64_t n, double d) {
  double nd = static_cast<double>(n) * d;
  if (d >= 1) return 1.0;
  if (nd <= 0.5) return 0.0;
  int64_t k = static_cast<int64_t>(std::ceil(nd));
  double h = static_cast<double>(k) - nd;
  size_t m = static_cast<size_t>(2 * k - 1);
  std::vector<double> inv_fact(m + 2);  // 1/j!
  inv_fact[0] = 1;
  for (size_t j = 1; j < inv_fact.size(); ++j)
    inv_fact[j] = inv_fact[j - 1] / static_cast<double>(j);
  ScaledMatrix hm{m, std::vector<double>(m * m, 0.0), 0};
  for (size_t i = 0; i < m; ++i) {
    for (size_t j = 0; j <= std::min(i + 1, m - 1); ++j) hm.a[i * m + j] = inv_fact[i - j + 1];
  }
  for (size_t i = 0; i < m; ++i) {
    hm.a[i * m] -= std::pow(h, static_cast<double>(i + 1)) * inv_fact[i + 1];
    hm.a[(m - 1) * m + i] -= std::pow(h, static_cast<double>(m - i)) * inv_fact[m - i];
  }
  if (2 * h - 1 > 0) hm.a[(m - 1) * m] += std::pow(2 * h - 1, static_cast<double>(m)) * inv_fact[m];
  // H^n by squaring.
  ScaledMatrix result{m, std::vector<double>(m * m, 0.0), 0};
  for (size_t i = 0; i < m; ++i) result.a[i * m + i] = 1;
  for (int64_t e = n; e > 0; e >>= 1) {
    if (e & 1) result = Multiply(result, hm);
    if (e > 1) hm = Multiply(hm, hm);
  }
  size_t kk = static_cast<size_t>(k - 1);
  double s = result.a[kk * m + kk];
  int exponent = result.exponent;
  double dn = static_cast<double>(n);
  for (int64_t i = 1; i <= n; ++i) {
    s = s * static_cast<double>(i) / dn;
    if (s != 0 && std::abs(s) < 0x1p-128) {
      s = std::ldexp(s, 128);
      exponent -= 128;
    }
  }
  return std::clamp(std::ldexp(s, exponent), 0.0, 1.0);
}

// P(D_n < x) by the Pelz-Good expansion K0(z) + K1(z)/sqrt(n) + K2(z)/n + K3(z)/n^1.5 with
// z = x sqrt(n), in the form for small z (theta-function transformed), as Simard & L'Ecuyer give
// it for n > 140.
double PelzGoodCdf(int64_t n, double x) {
  if (x <= 0) return 0.0;
  if (x >= 1) return 1.0;
  constexpr double kPi = std::numbers::pi;
  constexpr double kPi2 = kPi * kPi, kPi4 = kPi2 * kPi2, kPi6 = kPi4 * kPi2;
  double dn = static_cast<double>(n);
  double z = std::sqrt(dn) * x;
  double z2 = z * z, z3 = z2 * z, z4 = z2 * z2, z6 = z4 * z2, z8 = z4 * z4;
  double qlog = -kPi2 / 8 / z2;
  if (qlog < -708) return 0.0;
  int64_t maxk = static_cast<int64_t>(std::ceil(16 * z / kPi));
  double k0 = 0, k1 = 0, k2 = 0, k3 = 0;
  for (int64_t k = 1; k <= maxk; ++k) {
    double m = static_cast<double>(2 * k - 1);
    double m2 = m * m, m4 = m2 * m2, m6 = m4 * m2;
    double w = std::exp(qlog * m2);  // q^((2k-1)^2)
    k0 += w;
    k1 += w * (kPi2 / 4 * m2 - z2);
    k2 += w * (6 * z6 + 2 * z4 + (2 * z4 - 5 * z2) * kPi2 / 4 * m2 + kPi4 * (1 - 2 * z2) / 16 * m4);
    k3 += w * (-30 * z6 - 90 * z8 + kPi2 * (135 * z4 - 96 * z6) / 4 * m2 +
               kPi4 * (-60 * z2 + 212 * z4) / 16 * m4 + kPi6 * (5 - 30 * z2) / 64 * m6);
  }
  const double sqrt2pi = std::sqrt(2 * kPi);
  k0 *= sqrt2pi / z;
  k1 *= sqrt2pi / (6 * z4);
  k2 *= sqrt2pi / (72 * z * z6);
  k3 *= sqrt2pi / (6480 * z4 * z6);
  double e2 = 0, e3 = 0;
  for (int64_t k = 1; k <= maxk; ++k) {
    double dk = static_cast<double>(k), k2v = dk * dk;
    double w = std::exp(-kPi2 / 2 / z2 * k2v);
    e2 += k2v * w;
    e3 += (3 * z2 - kPi2 * k2v) * k2v * w;
  }
  k2 += e2 * kPi2 * sqrt2pi / (-36 * z3);
  k3 += e3 * kPi2 * sqrt2pi / (216 * z6);
  return k0 + k1 / std::sqrt(dn) + k2 / dn + k3 / (dn * std::sqrt(dn));
}

// Two-sample exact p-values (scipy's exact method, two-sided). `h` is the statistic times
// lcm(n1, n2), an integer.
// n1 == n2 == n: P(D >= h/n) = 2 * sum_{k>=1} (-1)^(k+1) C(2n, n - kh) / C(2n, n), evaluated
// Horner-like from the last term so that no binomial is formed.
double ExactSquare(int64_t n, int64_t h) {
  double p = 0;
  for (int64_t k = n / h; k >= 0; --k) {
    double a = 1;
    for (int64_t j = 0; j < h; ++j) {
      a = static_cast<double>(n - k * h - j) * a / static_cast<double>(n + k * h + j + 1);
    }
    p = a * (1 - p);
  }
  return 2 * p;
}

// n1 != n2: the probability that a uniformly random lattice path from (0,0) to (m, n) touches
// |x/m - y/n| >= h/lcm somewhere. Q(i,j) = 1 outside the band, else
// Q(i,j) = (i Q(i-1,j) + j Q(i,j-1)) / (i+j) (the fraction of paths into (i,j) from each side);
// the answer is Q(m, n). One column at a time, only the band is stored.
double ExactInside(int64_t m, int64_t n, int64_t g, int64_t h) {
  if (m < n) std::swap(m, n);
  int64_t mg = m / g, ng = n / g;
  // Column i holds the inside cells j with |ng*i - mg*j| < h: lo(i) <= j <= hi(i).
  auto lo = [&](int64_t i) {
    int64_t num = ng * i - h;  // mg*j > num
    int64_t j = num >= 0 ? num / mg + 1 : -((-num) / mg);
    return std::max<int64_t>(j, 0);
  };
  auto hi = [&](int64_t i) {
    int64_t num = ng * i + h;  // mg*j < num
    int64_t j = num > 0 ? (num - 1) / mg : -((-num) / mg) - 1;
    return std::min<int64_t>(j, n);
  };
  std::vector<double> prev, cur;
  int64_t plo = lo(0), phi = hi(0);  // column 0: Q(0,j) = 0 inside (only one path, straight up)
  prev.assign(static_cast<size_t>(std::max<int64_t>(phi - plo + 1, 0)), 0.0);
  auto prev_at = [&](int64_t j) {
    return j < plo || j > phi ? 1.0 : prev[static_cast<size_t>(j - plo)];
  };
  for (int64_t i = 1; i <= m; ++i) {
    int64_t clo = lo(i), chi = hi(i);
    if (chi < clo) return 1.0;
    cur.assign(static_cast<size_t>(chi - clo + 1), 0.0);
    double below = 1.0;  // Q(i, clo-1): outside the band
    for (int64_t j = clo; j <= chi; ++j) {
      double di = static_cast<double>(i), dj = static_cast<double>(j);
      double v = (di * prev_at(j) + (j == 0 ? 0.0 : dj * below)) / (di + dj);
      cur[static_cast<size_t>(j - clo)] = v;
      below = v;
    }
    std::swap(prev, cur);
    plo = clo;
    phi = chi;
  }
  return prev_at(n);
}

// Regularized upper incomplete gamma Q(a, x) (the chi-squared tail is Q(dof/2, stat/2)): the
// series for P when x < a + 1, else Lentz's continued fraction for Q.
double GammaQ(double a, double x) {
  if (x <= 0) return 1.0;
  double lpre = a * std::log(x) - x - std::lgamma(a);
  if (x < a + 1) {
    double term = 1 / a, sum = term;
    for (int i = 1; i < 100000; ++i) {
      term *= x / (a + i);
      sum += term;
      if (std::abs(term) < std::abs(sum) * 1e-17) break;
    }
    return std::clamp(1 - sum * std::exp(lpre), 0.0, 1.0);
  }
  constexpr double kTiny = 1e-300;
  double b = x + 1 - a, c = 1 / kTiny, d = 1 / b, f = d;
  for (int i = 1; i < 100000; ++i) {
    double an = -i * (i - a);
    b += 2;
    d = an * d + b;
    if (std::abs(d) < kTiny) d = kTiny;
    c = b + an / c;
    if (std::abs(c) < kTiny) c = kTiny;
    d = 1 / d;
    double delta = d * c;
    f *= delta;
    if (std::abs(delta - 1) < 1e-16) break;
  }
  return std::clamp(std::exp(lpre) * f, 0.0, 1.0);
}

// Sum of counts, or -1 when a count is negative.
int64_t Total(const std::vector<int64_t>& v) {
  int64_t s = 0;
  for (int64_t c : v) {
    if (c < 0) return -1;
    s += c;
  }
  return s;
}

std::optional<double> Opt(double v) {
  if (std::isnan(v)) return std::nullopt;
  return v;
}

nlohmann::json OptJson(const std::optional<double>& v) {
  if (!v || !std::isfinite(*v)) return nullptr;
  return *v;
}

constexpr const char* kOther = "__other__";

void CompareNumeric(const ColumnProfile& reference, const Column& current, ColumnDrift* out) {
  out->edges = reference.histogram.edges;
  out->reference_counts = reference.histogram.counts;
  if (out->edges.size() < 2 || out->reference_counts.size() + 1 != out->edges.size()) return;
  out->current_counts = CountIntoBins(current, out->edges);
  const std::vector<int64_t>& r = out->reference_counts;
  const std::vector<int64_t>& c = out->current_counts;
  int64_t nr = Total(r), nc = Total(c);
  if (nr <= 0 || nc <= 0) return;
  DriftScores& s = out->scores;
  s.psi = Opt(Psi(r, c));
  s.js = Opt(JensenShannon(r, c));
  // KS at the edges: the CDFs after each bin (the last is 1 on both sides).
  double d = 0;
  int64_t cr = 0, cc = 0;
  for (size_t i = 0; i + 1 < r.size(); ++i) {
    cr += r[i];
    cc += c[i];
    d = std::max(d, std::abs(static_cast<double>(cr) / static_cast<double>(nr) -
                             static_cast<double>(cc) / static_cast<double>(nc)));
  }
  double a = static_cast<double>(std::max(nr, nc)), b = static_cast<double>(std::min(nr, nc));
  s.ks = d;
  s.ks_pvalue = KolmogorovSf(static_cast<int64_t>(std::nearbyint(a * b / (a + b))), d);
  std::vector<double> centres(r.size()), wr(r.size()), wc(r.size());
  for (size_t i = 0; i < r.size(); ++i) {
    centres[i] = (out->edges[i] + out->edges[i + 1]) / 2;
    wr[i] = static_cast<double>(r[i]);
    wc[i] = static_cast<double>(c[i]);
  }
  s.wasserstein = Opt(Wasserstein1Weighted(centres, wr, centres, wc));
}

void CompareCategorical(const ColumnProfile& reference, const Column& current, ColumnDrift* out) {
  std::unordered_map<std::string, size_t> index;
  int64_t top_sum = 0;
  for (const auto& [value, count] : reference.top) {
    index.emplace(value, out->categories.size());
    out->categories.push_back(value);
    out->reference_counts.push_back(count);
    top_sum += count;
  }
  size_t other = out->categories.size();
  out->categories.push_back(kOther);
  out->reference_counts.push_back(std::max<int64_t>(reference.count - top_sum, 0));
  // The top lists every reference value only when it holds `distinct` of them.
  bool complete = static_cast<int64_t>(reference.top.size()) >= reference.distinct;
  out->current_counts.assign(out->categories.size(), 0);
  std::vector<std::pair<std::string, int64_t>> unseen;
  auto add = [&](const std::string& value, int64_t n) {
    auto it = index.find(value);
    if (it != index.end()) {
      out->current_counts[it->second] += n;
    } else if (!complete) {
      out->current_counts[other] += n;
    } else {
      unseen.emplace_back(value, n);
    }
  };
  if (current.type() == ColumnType::kString) {
    std::vector<int64_t> per_code(current.dictionary().size(), 0);
    for (int32_t code : current.codes()) {
      if (code >= 0) ++per_code[static_cast<size_t>(code)];
    }
    for (size_t k = 0; k < per_code.size(); ++k) {
      if (per_code[k] > 0) add(current.dictionary()[k], per_code[k]);
    }
  } else {
    // Numeric or bool against a categorical reference: compare the text of the values.
    std::unordered_map<std::string, int64_t> counts;
    for (size_t i = 0; i < current.size(); ++i) {
      if (!current.is_null(i)) ++counts[current.ToText(i)];
    }
    std::vector<std::pair<std::string, int64_t>> sorted(counts.begin(), counts.end());
    std::sort(sorted.begin(), sorted.end());
    for (const auto& [value, n] : sorted) add(value, n);
  }
  // New values after "__other__", most frequent first, ties by value (as the profile's top).
  std::sort(unseen.begin(), unseen.end(), [](const auto& a, const auto& b) {
    return a.second != b.second ? a.second > b.second : a.first < b.first;
  });
  for (auto& [value, n] : unseen) {
    out->categories.push_back(std::move(value));
    out->reference_counts.push_back(0);
    out->current_counts.push_back(n);
  }
  if (Total(out->reference_counts) <= 0 || Total(out->current_counts) <= 0) return;
  DriftScores& s = out->scores;
  s.psi = Opt(Psi(out->reference_counts, out->current_counts));
  s.js = Opt(JensenShannon(out->reference_counts, out->current_counts));
  Chi2Result chi = ChiSquared(out->reference_counts, out->current_counts);
  s.chi2 = Opt(chi.statistic);
  s.chi2_pvalue = Opt(chi.pvalue);
}

}  // namespace

std::vector<double> SortedWithoutNaN(std::vector<double> values) {
  std::erase_if(values, [](double x) { return std::isnan(x); });
  RadixSortInPlace(&values);
  return values;
}

double QuantileOfSorted(const std::vector<double>& sorted, double q) {
  if (sorted.empty()) return kNaN;
  size_t n = sorted.size();
  double vi = static_cast<double>(n - 1) * q;  // numpy "linear": (n - 1) * q
  double prev = std::floor(vi);
  double gamma = vi - prev;
  int64_t i = static_cast<int64_t>(prev);
  i = std::clamp<int64_t>(i, 0, static_cast<int64_t>(n - 1));
  int64_t i1 = std::clamp<int64_t>(i + 1, 0, static_cast<int64_t>(n - 1));
  double a = sorted[static_cast<size_t>(i)], b = sorted[static_cast<size_t>(i1)];
  double diff = b - a;  // numpy's _lerp: exact at both ends
  return gamma >= 0.5 ? b - diff * (1 - gamma) : a + diff * gamma;
}

double KolmogorovSf(int64_t n, double x) {
  if (n <= 0 || std::isnan(x)) return kNaN;
  if (x >= 1) return 0.0;
  if (x <= 0) return 1.0;
  double dn = static_cast<double>(n);
  double t = dn * x;
  if (t <= 1) {  // Ruben-Gambino: P(D_n < x) = n!/n^n (2t - 1)^n for 1/2n < x <= 1/n
    if (t <= 0.5) return 1.0;
    double cdf;
    if (n <= 140) {
      cdf = 1;
      for (int64_t i = 1; i <= n; ++i) cdf *= static_cast<double>(i) / dn * (2 * t - 1);
    } else {
      cdf = std::exp(std::lgamma(dn + 1) - dn * std::log(dn) + dn * std::log(2 * t - 1));
    }
    return std::clamp(1 - cdf, 0.0, 1.0);
  }
  if (t >= dn - 1) return std::clamp(2 * std::pow(1 - x, dn), 0.0, 1.0);
  if (x >= 0.5) return std::clamp(2 * SmirnovSf(n, x), 0.0, 1.0);
  double nx2 = t * x;
  if (n <= 140) {
    // scipy uses Durbin below 0.754693 and Pomeranz up to 4; both are exact, Durbin serves both.
    if (nx2 <= 4) return std::clamp(1 - DurbinCdf(n, x), 0.0, 1.0);
    return std::clamp(2 * SmirnovSf(n, x), 0.0, 1.0);
  }
  if (nx2 >= 370) return 0.0;
  if (nx2 >= 2.2) return std::clamp(2 * SmirnovSf(n, x), 0.0, 1.0);
  double cdf = n <= 100000 && dn * std::pow(x, 1.5) <= 1.4 ? DurbinCdf(n, x) : PelzGoodCdf(n, x);
  return std::clamp(1 - cdf, 0.0, 1.0);
}

KsResult KsTwoSampleSorted(const std::vector<double>& a, const std::vector<double>& b) {
  size_t n1 = a.size(), n2 = b.size();
  if (n1 == 0 || n2 == 0) return {kNaN, kNaN};
  // Merge walk: after each distinct value, the CDF difference (as scipy, cdf1 - cdf2 in doubles).
  double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  double max_diff = 0, min_diff = 0;
  size_t i = 0, j = 0;
  while (i < n1 || j < n2) {
    double v = j >= n2 || (i < n1 && a[i] <= b[j]) ? a[i] : b[j];
    while (i < n1 && a[i] <= v) ++i;
    while (j < n2 && b[j] <= v) ++j;
    double diff = static_cast<double>(i) / d1 - static_cast<double>(j) / d2;
    max_diff = std::max(max_diff, diff);
    min_diff = std::min(min_diff, diff);
  }
  double min_s = std::clamp(-min_diff, 0.0, 1.0);
  double d = min_s > max_diff ? min_s : max_diff;
  int64_t m1 = static_cast<int64_t>(n1), m2 = static_cast<int64_t>(n2);
  double p;
  if (std::max(n1, n2) <= 10000) {  // scipy's MAX_AUTO_N: exact
    int64_t g = std::gcd(m1, m2);
    int64_t lcm = (m1 / g) * m2;
    int64_t h = static_cast<int64_t>(std::nearbyint(d * static_cast<double>(lcm)));
    d = static_cast<double>(h) / static_cast<double>(lcm);
    if (h == 0) {
      p = 1.0;
    } else if (m1 == m2) {
      p = ExactSquare(m1, h);
    } else {
      p = ExactInside(m1, m2, g, h);
    }
  } else {
    double big = std::max(d1, d2), small = std::min(d1, d2);
    p = KolmogorovSf(static_cast<int64_t>(std::nearbyint(big * small / (big + small))), d);
  }
  return {d, std::clamp(p, 0.0, 1.0)};
}

KsResult KsTwoSample(std::vector<double> a, std::vector<double> b) {
  return KsTwoSampleSorted(SortedWithoutNaN(std::move(a)), SortedWithoutNaN(std::move(b)));
}

double Wasserstein1Weighted(const std::vector<double>& u, const std::vector<double>& u_weights,
                            const std::vector<double>& v, const std::vector<double>& v_weights) {
  if (u.size() != u_weights.size() || v.size() != v_weights.size()) return kNaN;
  auto sorted = [](const std::vector<double>& x, const std::vector<double>& w) {
    std::vector<std::pair<double, double>> s;
    s.reserve(x.size());
    for (size_t i = 0; i < x.size(); ++i) {
      if (!std::isnan(x[i])) s.emplace_back(x[i], w[i]);
    }
    std::stable_sort(s.begin(), s.end(),
                     [](const auto& p, const auto& q) { return p.first < q.first; });
    return s;
  };
  std::vector<std::pair<double, double>> su = sorted(u, u_weights), sv = sorted(v, v_weights);
  double tu = 0, tv = 0;
  for (const auto& p : su) tu += p.second;
  for (const auto& p : sv) tv += p.second;
  if (!(tu > 0) || !(tv > 0)) return kNaN;
  size_t i = 0, j = 0, nu = su.size(), nv = sv.size();
  double cu = 0, cv = 0;
  long double area = 0;
  while (i < nu || j < nv) {
    double x = j >= nv || (i < nu && su[i].first <= sv[j].first) ? su[i].first : sv[j].first;
    while (i < nu && su[i].first <= x) cu += su[i++].second;
    while (j < nv && sv[j].first <= x) cv += sv[j++].second;
    if (i >= nu && j >= nv) break;
    double next = j >= nv || (i < nu && su[i].first <= sv[j].first) ? su[i].first : sv[j].first;
    area += static_cast<long double>(std::abs(cu / tu - cv / tv)) * (next - x);
  }
  return static_cast<double>(area);
}

double Wasserstein1(std::vector<double> a, std::vector<double> b) {
  std::vector<double> sa = SortedWithoutNaN(std::move(a)), sb = SortedWithoutNaN(std::move(b));
  size_t n1 = sa.size(), n2 = sb.size();
  if (n1 == 0 || n2 == 0) return kNaN;
  double d1 = static_cast<double>(n1), d2 = static_cast<double>(n2);
  size_t i = 0, j = 0;
  long double area = 0;
  while (i < n1 || j < n2) {
    double x = j >= n2 || (i < n1 && sa[i] <= sb[j]) ? sa[i] : sb[j];
    while (i < n1 && sa[i] <= x) ++i;
    while (j < n2 && sb[j] <= x) ++j;
    if (i >= n1 && j >= n2) break;
    double next = j >= n2 || (i < n1 && sa[i] <= sb[j]) ? sa[i] : sb[j];
    area += static_cast<long double>(
                std::abs(static_cast<double>(i) / d1 - static_cast<double>(j) / d2)) *
            (next - x);
  }
  return static_cast<double>(area);
}

double Psi(const std::vector<int64_t>& reference, const std::vector<int64_t>& current) {
  if (reference.size() != current.size()) return kNaN;
  int64_t nr = Total(reference), nc = Total(current);
  if (nr <= 0 || nc <= 0) return kNaN;
  double psi = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    double r = std::max(static_cast<double>(reference[i]) / static_cast<double>(nr), kPsiEpsilon);
    double c = std::max(static_cast<double>(current[i]) / static_cast<double>(nc), kPsiEpsilon);
    psi += (c - r) * std::log(c / r);
  }
  return psi;
}

double JensenShannon(const std::vector<int64_t>& p, const std::vector<int64_t>& q) {
  if (p.size() != q.size()) return kNaN;
  int64_t np = Total(p), nq = Total(q);
  if (np <= 0 || nq <= 0) return kNaN;
  double js = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    double a = static_cast<double>(p[i]) / static_cast<double>(np);
    double b = static_cast<double>(q[i]) / static_cast<double>(nq);
    double m = (a + b) / 2;
    if (a > 0) js += a * std::log(a / m);
    if (b > 0) js += b * std::log(b / m);
  }
  js /= std::log(2.0);
  return std::sqrt(std::max(js / 2, 0.0));
}

Chi2Result ChiSquared(const std::vector<int64_t>& reference, const std::vector<int64_t>& current) {
  if (reference.size() != current.size()) return {kNaN, kNaN, 0};
  int64_t nr = Total(reference), nc = Total(current);
  if (nr <= 0 || nc <= 0) return {kNaN, kNaN, 0};
  double total = static_cast<double>(nr + nc);
  double stat = 0;
  int categories = 0;
  for (size_t i = 0; i < reference.size(); ++i) {
    int64_t col = reference[i] + current[i];
    if (col == 0) continue;
    ++categories;
    for (auto [observed, row] : {std::pair{reference[i], nr}, std::pair{current[i], nc}}) {
      double expected = static_cast<double>(row) * static_cast<double>(col) / total;
      double diff = static_cast<double>(observed) - expected;
      stat += diff * diff / expected;
    }
  }
  int dof = categories - 1;
  if (dof <= 0) return {0.0, 1.0, 0};
  return {stat, GammaQ(dof / 2.0, stat / 2), dof};
}

ColumnDrift CompareToProfile(const ColumnProfile& reference, const Column& current) {
  ColumnDrift out;
  out.name = reference.name;
  out.categorical = reference.type == ColumnType::kString || reference.type == ColumnType::kBool;
  if (out.categorical) {
    CompareCategorical(reference, current, &out);
  } else {
    CompareNumeric(reference, current, &out);
  }
  return out;
}

std::vector<ColumnDrift> CompareTableToProfile(const Profile& reference, const Table& current,
                                               int threads) {
  std::vector<const ColumnProfile*> cols;
  for (const ColumnProfile& c : reference.columns) {
    if (current.Find(c.name) != nullptr) cols.push_back(&c);
  }
  std::vector<ColumnDrift> out(cols.size());
  ParallelFor(cols.size(), ThreadCount(threads),
              [&](size_t i) { out[i] = CompareToProfile(*cols[i], *current.Find(cols[i]->name)); });
  return out;
}

nlohmann::json ColumnDriftToJson(const ColumnDrift& drift) {
  nlohmann::json j = {{"name", drift.name}, {"categorical", drift.categorical}};
  if (drift.categorical) {
    j["categories"] = drift.categories;
  } else {
    nlohmann::json edges = nlohmann::json::array();
    for (double e : drift.edges) edges.push_back(std::isfinite(e) ? nlohmann::json(e) : nullptr);
    j["edges"] = std::move(edges);
  }
  j["reference_counts"] = drift.reference_counts;
  j["current_counts"] = drift.current_counts;
  const DriftScores& s = drift.scores;
  j["psi"] = OptJson(s.psi);
  j["ks"] = OptJson(s.ks);
  j["ks_pvalue"] = OptJson(s.ks_pvalue);
  j["wasserstein"] = OptJson(s.wasserstein);
  j["js"] = OptJson(s.js);
  j["chi2"] = OptJson(s.chi2);
  j["chi2_pvalue"] = OptJson(s.chi2_pvalue);
  return j;
}

}  // namespace ferry::data
