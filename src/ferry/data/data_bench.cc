// data_bench: reads a CSV into a Table and profiles it (20 bins), the work bench/data.sh times
// against pandas. Prints one line of figures; exits non-zero on an error.
//
// Example:
//   data_bench /tmp/numeric.csv            # threads: one per core
//   data_bench /tmp/numeric.csv --threads 1

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "ferry/common/status.h"
#include "ferry/data/csv.h"
#include "ferry/data/profile.h"

int main(int argc, char** argv) {
  using Clock = std::chrono::steady_clock;
  if (argc != 2 && !(argc == 4 && std::string(argv[2]) == "--threads")) {
    std::fprintf(stderr, "usage: data_bench <file.csv[.zst]> [--threads N]\n");
    return 2;
  }
  int threads = argc == 4 ? std::atoi(argv[3]) : 0;
  auto t0 = Clock::now();
  absl::StatusOr<ferry::data::CsvReadResult> r =
      ferry::data::ReadCsvFile(argv[1], {.threads = threads});
  if (!r.ok()) {
    std::fprintf(stderr, "data_bench: %s\n", r.status().ToString().c_str());
    return 1;
  }
  auto t1 = Clock::now();
  ferry::data::Profile p = ferry::data::ComputeProfile(r->table, {.bins = 20, .threads = threads});
  auto t2 = Clock::now();
  auto s = [](auto d) { return std::chrono::duration<double>(d).count(); };
  std::printf("rows=%zu columns=%zu read_s=%.3f profile_s=%.3f profiled_columns=%zu\n",
              r->table.num_rows(), r->table.num_columns(), s(t1 - t0), s(t2 - t1),
              p.columns.size());
  return 0;
}
