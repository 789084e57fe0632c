#pragma once
// Data validation: the checks of a `validate` pipeline step and of `ferry validate-data`. A rules
// file (YAML) is parsed once into a RuleSet; Validate() checks a Table against every rule — it
// never stops at the first violation — and returns a report for a person (ToText) and for
// machines (ToJson). Thread-safety: RuleSet and the report are plain values; Validate is a pure
// function, safe to call concurrently on tables nobody writes.
//
// The rules file:
//
//   # checks/customers.yaml
//   level: error                # default level of every rule (error|warning)
//   rows: { min: 100, max: 1000000 }
//   columns:
//     required: [customer_id, tenure, plan, charges, churned, signup_date]
//     allow_extra: false        # a column not named anywhere in this file is a violation
//   schema:                     # per-column rules
//     customer_id: { type: int64, unique: true, max_missing: 0 }
//     tenure:      { type: int64, max_missing: 0.05, range: [0, 120] }
//     plan:        { type: string, allowed: [basic, pro, enterprise] }
//     charges:     { type: float64, range: { min: 0 }, level: warning }
//     signup_date: { type: timestamp, freshness: 400d }
//   distribution:               # against a reference dataset version's profile
//     reference: customers@1    # resolved by the caller into ValidateOptions::reference
//     columns:
//       charges: { psi: 0.2, ks: 0.1 }   # thresholds: a violation when the statistic is above
//       plan:    { psi: 0.2 }
//
// Every section is optional. `level:` may also be set in `rows`, `columns`, `distribution`, and
// in each column's mapping of `schema` and `distribution.columns`; the innermost one wins.
//
// What each rule means (rule names are the YAML keys and appear in reports):
//   rows         min/max number of rows, inclusive.
//   required     one rule per listed column: the column exists.
//   allow_extra  false: every column of the table is named in `required`, `schema` or
//                `distribution.columns`. One violation listing the extra columns.
//   type         int64|float64|string|bool|timestamp (or an alias ParseTypeName accepts). An
//                int64 column satisfies `type: float64`; every other type must match exactly.
//   max_missing  the fraction of null rows may not exceed this: 0..1, or a percentage "5%".
//                NaN is a value, not a null.
//   range        [min, max] or {min:, max:}, inclusive; a bound may be left out (or null).
//                Numeric columns (bool as 0/1); on a timestamp column the bounds may be written
//                as timestamps ("2026-01-01"; then the column must be a timestamp). NaN is out
//                of every range. Nulls are not checked.
//   allowed      a list of categories; a non-null value whose text (as CSV writes it) is not in
//                the list is a violation. Works for string, int64 and bool columns.
//   unique       true: no non-null value occurs twice; the count is the number of repeats.
//   freshness    a duration (30m, 12h, 400d, see ParseDuration): the newest value of a timestamp
//                column is no older than this, measured back from ValidateOptions::now_micros.
//   psi          Population Stability Index against the reference profile, a violation above
//                the threshold. Numeric columns: the bins are the reference histogram's;
//                current values are counted into its edges (values below the first / above the
//                last edge go to the first / last bin, NaN is skipped). String columns: the
//                buckets are the reference's top categories plus one "other" bucket.
//                PSI = sum_i (q_i - p_i) * ln(q_i / p_i), p_i the reference share and q_i the
//                current share of bucket i, each share raised to at least 1e-6 so that an empty
//                bucket counts as rare, not impossible.
//   ks           Kolmogorov-Smirnov statistic max_x |F_ref(x) - F_cur(x)|, numeric columns only.
//                F_cur is the empirical CDF of the current values. F_ref is computed from the
//                STORED HISTOGRAM of the reference profile (piecewise linear inside each bin),
//                not from the raw reference data, so it is exact only up to the bin width.
//
// Semantics of a report:
//   - A column named by rules but absent from the table is ONE violation (rule "required" when
//     the column is required, else "column"), at the most severe level of its rules; its other
//     rules are listed as not checked.
//   - `distribution` with no reference profile given is one violation (rule "reference").
//   - rules_checked counts every rule of the RuleSet (one per required column, one per key of
//     each column), whether it passed, failed or could not be checked.
//   - Violations come in the order of the rules file; samples are up to 5 distinct offending
//     values as text, in row order.
//
// Example:
//   FERRY_ASSIGN_OR_RETURN(RuleSet rules, LoadRules("checks/customers.yaml"));
//   ValidateOptions opts{.now_micros = absl::ToUnixMicros(clock.Now()),
//                        .reference = &profile,  // of rules.reference, loaded by the caller
//                        .dataset = "customers@7"};
//   ValidationReport report = Validate(rules, table, opts);
//   std::cout << report.ToText();
//   if (!report.passed()) return absl::FailedPreconditionError("data validation failed");

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "ferry/config/diagnostics.h"
#include "ferry/data/profile.h"
#include "ferry/data/table.h"
#include "nlohmann/json.hpp"

namespace ferry::data {

enum class RuleKind {
  kRows,
  kRequired,
  kAllowExtra,
  kType,
  kMaxMissing,
  kRange,
  kAllowed,
  kUnique,
  kFreshness,
  kPsi,
  kKs,
};

// The YAML key of a rule kind: "rows", "required", "allow_extra", "type", ...
std::string_view RuleName(RuleKind kind);

enum class Level { kError, kWarning };
std::string_view LevelName(Level level);  // "error", "warning"

// One rule; only the fields of its kind are meaningful.
struct Rule {
  RuleKind kind = RuleKind::kRows;
  std::string column;  // "" for rows and allow_extra
  Level level = Level::kError;
  config::SourceLoc loc;                      // of the rule's key in the rules file
  std::optional<int64_t> min_rows, max_rows;  // rows
  ColumnType type = ColumnType::kFloat64;     // type
  double max_missing = 0;                     // max_missing, a fraction
  std::optional<double> min, max;             // range (timestamps in microseconds)
  bool timestamp_bounds = false;              // range: a bound was written as a timestamp
  std::vector<std::string> allowed;           // allowed
  int64_t freshness_micros = 0;               // freshness
  double threshold = 0;                       // psi, ks
};

struct RuleSet {
  std::string source;       // the file the rules came from
  std::vector<Rule> rules;  // in file order
  bool has_distribution = false;
  std::string reference;  // `distribution.reference`, "" if none
  config::SourceLoc reference_loc;
};

// Reads and parses a rules file. NotFound when it is missing; InvalidArgument carrying every
// error of the file, one per line "file:line:column: error: message".
absl::StatusOr<RuleSet> LoadRules(const std::string& path);
// Same, from text; `source_name` is the file name used in messages.
absl::StatusOr<RuleSet> ParseRules(std::string_view yaml, const std::string& source_name);

struct Violation {
  std::string rule;     // RuleName, or "column" / "reference" (see above)
  std::string column;   // "" for table-wide rules
  std::string level;    // "error" or "warning"
  std::string message;  // for a person: what was found and what was expected
  int64_t count = 0;    // offending values (rows, repeats, ...); 1 for a structural violation
  std::vector<std::string> samples;  // up to 5 offending values as text
};

struct ValidationReport {
  std::string dataset;
  int64_t rows = 0;
  int rules_checked = 0;
  std::vector<Violation> violations;

  bool passed() const { return errors() == 0; }  // warnings do not fail
  int errors() const;
  int warnings() const;
  // {"dataset","rows","passed","errors","warnings","rules_checked","violations":[{"rule",
  // "column","level","message","count","samples"}]}, keys in this order.
  nlohmann::ordered_json ToJson() const;
  // A header (dataset, rows, verdict) and one aligned line per violation.
  std::string ToText() const;
};

struct ValidateOptions {
  int64_t now_micros = 0;              // "now" for freshness, microseconds since the epoch
  const Profile* reference = nullptr;  // the profile of distribution.reference; borrowed
  std::string dataset;                 // the name shown in the report
};

ValidationReport Validate(const RuleSet& rules, const Table& table, const ValidateOptions& opts);

}  // namespace ferry::data
