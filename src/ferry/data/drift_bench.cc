// drift_bench: KS (statistic and p-value) and PSI of every column of a reference file against a
// current file, the work bench/drift.sh times against scipy.stats.ks_2samp + a numpy PSI
// (bench/drift_baseline.py, which computes exactly the same figures).
//
// Input: two files of raw little-endian float64, column-major (`columns` columns of equal length:
// column j is values [j*rows, (j+1)*rows)). PSI bins: 10, at the reference's deciles by numpy's
// "linear" quantile (q = k/10 for k = 1..9; QuantileOfSorted); a value v falls in bin
// #{edges <= v} (numpy.searchsorted(edges, v, side="right")), so the outer bins are open-ended.
// Prints one JSON object: {"columns": [{"ks", "ks_pvalue", "psi"}...], "load_s", "compute_s"}.
// Exits non-zero on an error.
//
// Example:
//   drift_bench ref.f64 cur.f64 20              # threads: one per core
//   drift_bench ref.f64 cur.f64 20 --threads 1

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "ferry/common/parallel.h"
#include "ferry/data/drift.h"
#include "nlohmann/json.hpp"

namespace {

// Reads column `j` of `rows` doubles from `path`; false on an error. The file is mapped and the
// column copied out once (a read() into a buffer would copy it twice).
bool ReadColumn(const std::string& path, size_t rows, size_t j, std::vector<double>* out) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) return false;
  size_t bytes = rows * sizeof(double);
  size_t offset = j * bytes;
  size_t page = static_cast<size_t>(::sysconf(_SC_PAGESIZE));
  size_t start = offset / page * page;
  void* map = ::mmap(nullptr, bytes + (offset - start), PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd,
                     static_cast<off_t>(start));
  ::close(fd);
  if (map == MAP_FAILED) return false;
  const double* first =
      reinterpret_cast<const double*>(static_cast<const char*>(map) + (offset - start));
  out->assign(first, first + rows);
  ::munmap(map, bytes + (offset - start));
  return true;
}

// The PSI bin counts of ascending `sorted` over the inner `edges`.
std::vector<int64_t> DecileCounts(const std::vector<double>& sorted,
                                  const std::vector<double>& edges) {
  std::vector<int64_t> counts;
  size_t before = 0;
  for (double e : edges) {
    // Values below e are in the bins before it (a value equal to e goes above).
    size_t below =
        static_cast<size_t>(std::lower_bound(sorted.begin(), sorted.end(), e) - sorted.begin());
    counts.push_back(static_cast<int64_t>(below - before));
    before = below;
  }
  counts.push_back(static_cast<int64_t>(sorted.size() - before));
  return counts;
}

}  // namespace

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  if (argc != 4 && !(argc == 6 && std::string(argv[4]) == "--threads")) {
    std::fprintf(stderr,
                 "usage: drift_bench <reference.f64> <current.f64> <columns> [--threads N]\n");
    return 2;
  }
  std::string ref_path = argv[1], cur_path = argv[2];
  size_t columns = static_cast<size_t>(std::atol(argv[3]));
  int threads = argc == 6 ? std::atoi(argv[5]) : 0;
  std::error_code ec;
  uintmax_t ref_bytes = std::filesystem::file_size(ref_path, ec);
  uintmax_t cur_bytes = ec ? 0 : std::filesystem::file_size(cur_path, ec);
  if (ec || columns == 0 || ref_bytes % (columns * sizeof(double)) != 0 ||
      cur_bytes % (columns * sizeof(double)) != 0) {
    std::fprintf(stderr, "drift_bench: %s and %s must exist and hold %zu columns of float64 each\n",
                 ref_path.c_str(), cur_path.c_str(), columns);
    return 1;
  }
  size_t ref_rows = ref_bytes / columns / sizeof(double);
  size_t cur_rows = cur_bytes / columns / sizeof(double);

  struct Result {
    ferry::data::KsResult ks{};
    double psi = 0;
    double load_s = 0;
    bool ok = false;
  };
  std::vector<Result> results(columns);
  auto t0 = Clock::now();
  ferry::ParallelFor(columns, ferry::ThreadCount(threads), [&](size_t j) {
    auto start = Clock::now();
    std::vector<double> ref, cur;
    if (!ReadColumn(ref_path, ref_rows, j, &ref) || !ReadColumn(cur_path, cur_rows, j, &cur)) {
      return;
    }
    results[j].load_s = std::chrono::duration<double>(Clock::now() - start).count();
    std::vector<double> a = ferry::data::SortedWithoutNaN(std::move(ref));
    std::vector<double> b = ferry::data::SortedWithoutNaN(std::move(cur));
    results[j].ks = ferry::data::KsTwoSampleSorted(a, b);
    std::vector<double> edges;
    for (int k = 1; k <= 9; ++k) edges.push_back(ferry::data::QuantileOfSorted(a, k / 10.0));
    results[j].psi = ferry::data::Psi(DecileCounts(a, edges), DecileCounts(b, edges));
    results[j].ok = true;
  });
  double total_s = std::chrono::duration<double>(Clock::now() - t0).count();

  nlohmann::json out = {{"columns", nlohmann::json::array()}};
  double load_s = 0;
  for (size_t j = 0; j < columns; ++j) {
    if (!results[j].ok) {
      std::fprintf(stderr, "drift_bench: could not read column %zu of %s / %s\n", j,
                   ref_path.c_str(), cur_path.c_str());
      return 1;
    }
    load_s += results[j].load_s;
    out["columns"].push_back({{"ks", results[j].ks.statistic},
                              {"ks_pvalue", results[j].ks.pvalue},
                              {"psi", results[j].psi}});
  }
  // Per-column load times add up over threads: report their share of the wall time.
  out["load_s"] =
      load_s / std::max(1, std::min<int>(ferry::ThreadCount(threads), static_cast<int>(columns)));
  out["compute_s"] = total_s - out["load_s"].get<double>();
  std::printf("%s\n", out.dump().c_str());
  return 0;
}
