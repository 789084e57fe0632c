#include "ferry/data/validate.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "absl/time/time.h"
#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "ferry/common/units.h"
#include "ferry/config/internal/yaml_util.h"
#include "fmt/format.h"

namespace ferry::data {
namespace {

using config::Diagnostics;
using config::SourceLoc;
using config::internal::Describe;
using config::internal::Entry;
using config::internal::YamlFile;

constexpr size_t kMaxSamples = 5;
// The floor of a bucket's share in PSI: an empty bucket is rare, not impossible (ln 0).
constexpr double kPsiEpsilon = 1e-6;

const std::vector<std::string> kTopKeys = {"level", "rows", "columns", "schema", "distribution"};
const std::vector<std::string> kRowsKeys = {"min", "max", "level"};
const std::vector<std::string> kColumnsKeys = {"required", "allow_extra", "level"};
const std::vector<std::string> kSchemaKeys = {"type",   "max_missing", "range", "allowed",
                                              "unique", "freshness",   "level"};
const std::vector<std::string> kDistributionKeys = {"reference", "columns", "level"};
const std::vector<std::string> kDistColumnKeys = {"psi", "ks", "level"};
const std::vector<std::string> kRangeKeys = {"min", "max"};

// Parses a rules file into a RuleSet, collecting every error into a Diagnostics.
class RulesParser {
 public:
  RulesParser(const YamlFile& file, Diagnostics* diags) : file_(file), diags_(diags) {}

  RuleSet Parse() {
    RuleSet rules;
    rules.source = file_.path;
    const YAML::Node& root = file_.root;
    if (root.IsNull()) {
      diags_->Add(SourceLoc{file_.path, 0, 0},
                  "the rules file is empty: add rows:, columns:, schema: or distribution:");
      return rules;
    }
    if (!root.IsMap()) {
      diags_->Add(config::internal::LocOf(file_, root),
                  fmt::format("a rules file must be a mapping (rows:, columns:, schema:, "
                              "distribution:), got {}",
                              Describe(root)));
      return rules;
    }
    std::vector<Entry> entries = config::internal::Entries(file_, root, diags_);
    Level level = Level::kError;
    for (const Entry& e : entries) {
      if (e.key == "level") ParseLevel(e, "the rules file", &level);
    }
    for (const Entry& e : entries) {
      if (e.key == "level") {
        continue;
      } else if (e.key == "rows") {
        ParseRows(e, level, &rules);
      } else if (e.key == "columns") {
        ParseColumns(e, level, &rules);
      } else if (e.key == "schema") {
        ParseSchema(e, level, &rules);
      } else if (e.key == "distribution") {
        ParseDistribution(e, level, &rules);
      } else {
        diags_->Add(e.key_loc, fmt::format("unknown top-level key '{}'{}", e.key,
                                           UnknownKeyHint(e.key, kTopKeys)));
      }
    }
    return rules;
  }

 private:
  void FieldError(const Entry& e, std::string_view where, std::string_view why) {
    diags_->Add(e.value_loc, fmt::format("invalid {} in {}: {}", e.key, where, why));
  }

  void UnknownKey(const Entry& e, std::string_view where, const std::vector<std::string>& keys) {
    diags_->Add(e.key_loc,
                fmt::format("unknown key '{}' in {}{}", e.key, where, UnknownKeyHint(e.key, keys)));
  }

  // The entries of a section that must be a mapping; nullopt (reported) otherwise.
  std::optional<std::vector<Entry>> MapEntries(const Entry& e, std::string_view what) {
    if (!e.value.IsMap()) {
      diags_->Add(e.value_loc,
                  fmt::format("{} must be a mapping, got {}", what, Describe(e.value)));
      return std::nullopt;
    }
    return config::internal::Entries(file_, e.value, diags_);
  }

  void ParseLevel(const Entry& e, std::string_view where, Level* level) {
    if (e.value.IsScalar() && e.value.Scalar() == "error") {
      *level = Level::kError;
    } else if (e.value.IsScalar() && e.value.Scalar() == "warning") {
      *level = Level::kWarning;
    } else {
      FieldError(e, where, fmt::format("must be error or warning, got {}", Describe(e.value)));
    }
  }

  // The `level:` entry of a mapping, or `inherited`.
  Level LevelOf(const std::vector<Entry>& entries, std::string_view where, Level inherited) {
    Level level = inherited;
    for (const Entry& e : entries) {
      if (e.key == "level") ParseLevel(e, where, &level);
    }
    return level;
  }

  Rule MakeRule(RuleKind kind, std::string column, Level level, const SourceLoc& loc) {
    Rule r;
    r.kind = kind;
    r.column = std::move(column);
    r.level = level;
    r.loc = loc;
    return r;
  }

  std::optional<int64_t> RowCount(const Entry& e) {
    std::optional<int64_t> n = config::internal::AsInt(e.value);
    if (!n || *n < 0) {
      FieldError(e, "rows",
                 fmt::format("must be a non-negative integer, got {}", Describe(e.value)));
      return std::nullopt;
    }
    return n;
  }

  void ParseRows(const Entry& section, Level level, RuleSet* rules) {
    std::optional<std::vector<Entry>> entries = MapEntries(section, "rows");
    if (!entries) return;
    level = LevelOf(*entries, "rows", level);
    Rule rule = MakeRule(RuleKind::kRows, "", level, section.key_loc);
    bool ok = true;
    for (const Entry& e : *entries) {
      if (e.key == "min") {
        rule.min_rows = RowCount(e);
        ok = ok && rule.min_rows.has_value();
      } else if (e.key == "max") {
        rule.max_rows = RowCount(e);
        ok = ok && rule.max_rows.has_value();
      } else if (e.key != "level") {
        UnknownKey(e, "rows", kRowsKeys);
      }
    }
    if (!ok) return;
    if (!rule.min_rows && !rule.max_rows) {
      diags_->Add(section.value_loc, "rows needs min:, max: or both");
      return;
    }
    if (rule.min_rows && rule.max_rows && *rule.min_rows > *rule.max_rows) {
      diags_->Add(section.value_loc, fmt::format("rows: min {} is greater than max {}",
                                                 *rule.min_rows, *rule.max_rows));
      return;
    }
    rules->rules.push_back(std::move(rule));
  }

  void ParseColumns(const Entry& section, Level level, RuleSet* rules) {
    std::optional<std::vector<Entry>> entries = MapEntries(section, "columns");
    if (!entries) return;
    level = LevelOf(*entries, "columns", level);
    for (const Entry& e : *entries) {
      if (e.key == "required") {
        if (!e.value.IsSequence()) {
          FieldError(e, "columns",
                     fmt::format("must be a list of column names, got {}", Describe(e.value)));
          continue;
        }
        std::set<std::string> seen;
        for (const YAML::Node& item : e.value) {
          SourceLoc loc = config::internal::LocOf(file_, item);
          if (!item.IsScalar() || item.Scalar().empty()) {
            diags_->Add(loc, fmt::format("invalid required in columns: a column name must be "
                                         "text, got {}",
                                         Describe(item)));
            continue;
          }
          if (!seen.insert(item.Scalar()).second) {
            diags_->Add(loc, fmt::format("column '{}' is listed twice in required", item.Scalar()));
            continue;
          }
          rules->rules.push_back(MakeRule(RuleKind::kRequired, item.Scalar(), level, loc));
        }
      } else if (e.key == "allow_extra") {
        std::optional<bool> allow = config::internal::AsBool(e.value);
        if (!allow) {
          FieldError(e, "columns", fmt::format("must be true or false, got {}", Describe(e.value)));
          continue;
        }
        if (!*allow) rules->rules.push_back(MakeRule(RuleKind::kAllowExtra, "", level, e.key_loc));
      } else if (e.key != "level") {
        UnknownKey(e, "columns", kColumnsKeys);
      }
    }
  }

  // A number, or a timestamp (for timestamp columns) in microseconds.
  std::optional<double> Bound(const YAML::Node& node, Rule* rule, std::string_view where,
                              const SourceLoc& loc) {
    if (node.IsNull()) return std::nullopt;
    if (std::optional<double> v = config::internal::AsNumber(node)) return v;
    if (node.IsScalar()) {
      if (std::optional<int64_t> t = ParseTimestamp(node.Scalar())) {
        rule->timestamp_bounds = true;
        return static_cast<double>(*t);
      }
    }
    diags_->Add(loc, fmt::format("invalid range in {}: a bound must be a number or a timestamp, "
                                 "got {}",
                                 where, Describe(node)));
    bad_bound_ = true;
    return std::nullopt;
  }

  // `range: [min, max]` or `range: {min: , max: }`.
  void ParseRange(const Entry& e, std::string_view where, Rule* rule, bool* ok) {
    bad_bound_ = false;
    if (e.value.IsSequence() && e.value.size() == 2) {
      rule->min = Bound(e.value[0], rule, where, config::internal::LocOf(file_, e.value[0]));
      rule->max = Bound(e.value[1], rule, where, config::internal::LocOf(file_, e.value[1]));
    } else if (e.value.IsMap()) {
      for (const Entry& b : config::internal::Entries(file_, e.value, diags_)) {
        if (b.key == "min") {
          rule->min = Bound(b.value, rule, where, b.value_loc);
        } else if (b.key == "max") {
          rule->max = Bound(b.value, rule, where, b.value_loc);
        } else {
          UnknownKey(b, fmt::format("range of {}", where), kRangeKeys);
          bad_bound_ = true;
        }
      }
    } else {
      FieldError(e, where,
                 fmt::format("must be [min, max] or {{min: , max: }}, got {}", Describe(e.value)));
      *ok = false;
      return;
    }
    if (bad_bound_) {
      *ok = false;
      return;
    }
    if (!rule->min && !rule->max) {
      FieldError(e, where, "needs a min, a max or both");
      *ok = false;
    } else if (rule->min && rule->max && *rule->min > *rule->max) {
      FieldError(e, where, fmt::format("min {} is greater than max {}", *rule->min, *rule->max));
      *ok = false;
    }
  }

  void ParseMaxMissing(const Entry& e, std::string_view where, Rule* rule, bool* ok) {
    std::optional<double> v;
    if (e.value.IsScalar()) {
      std::string text = e.value.Scalar();
      if (!text.empty() && text.back() == '%') {
        YAML::Node number(text.substr(0, text.size() - 1));
        if (std::optional<double> pct = config::internal::AsNumber(number)) v = *pct / 100;
      } else {
        v = config::internal::AsNumber(e.value);
      }
    }
    if (!v || !(*v >= 0 && *v <= 1)) {
      FieldError(e, where,
                 fmt::format("must be a fraction between 0 and 1 or a percentage like '5%', got {}",
                             Describe(e.value)));
      *ok = false;
      return;
    }
    rule->max_missing = *v;
  }

  void ParseAllowed(const Entry& e, std::string_view where, Rule* rule, bool* ok) {
    if (!e.value.IsSequence() || e.value.size() == 0) {
      FieldError(e, where,
                 fmt::format("must be a non-empty list of values, got {}", Describe(e.value)));
      *ok = false;
      return;
    }
    for (const YAML::Node& item : e.value) {
      if (!item.IsScalar()) {
        diags_->Add(config::internal::LocOf(file_, item),
                    fmt::format("invalid allowed in {}: a value must be a scalar, got {}", where,
                                Describe(item)));
        *ok = false;
        continue;
      }
      rule->allowed.push_back(item.Scalar());
    }
  }

  void ParseSchema(const Entry& section, Level level, RuleSet* rules) {
    std::optional<std::vector<Entry>> columns = MapEntries(section, "schema");
    if (!columns) return;
    for (const Entry& col : *columns) {
      std::string where = fmt::format("schema column '{}'", col.key);
      std::optional<std::vector<Entry>> entries = MapEntries(col, where);
      if (!entries) continue;
      Level col_level = LevelOf(*entries, where, level);
      for (const Entry& e : *entries) {
        if (e.key == "level") continue;
        auto it = std::find(kSchemaKeys.begin(), kSchemaKeys.end(), e.key);
        if (it == kSchemaKeys.end()) {
          UnknownKey(e, where, kSchemaKeys);
          continue;
        }
        Rule rule = MakeRule(RuleKind::kType, col.key, col_level, e.key_loc);
        bool ok = true;
        if (e.key == "type") {
          absl::StatusOr<ColumnType> t =
              e.value.IsScalar() ? ParseTypeName(e.value.Scalar())
                                 : absl::InvalidArgumentError(fmt::format(
                                       "must be a type name, got {}", Describe(e.value)));
          if (!t.ok()) {
            FieldError(e, where, std::string(t.status().message()));
            continue;
          }
          rule.type = *t;
        } else if (e.key == "max_missing") {
          rule.kind = RuleKind::kMaxMissing;
          ParseMaxMissing(e, where, &rule, &ok);
        } else if (e.key == "range") {
          rule.kind = RuleKind::kRange;
          ParseRange(e, where, &rule, &ok);
        } else if (e.key == "allowed") {
          rule.kind = RuleKind::kAllowed;
          ParseAllowed(e, where, &rule, &ok);
        } else if (e.key == "unique") {
          rule.kind = RuleKind::kUnique;
          std::optional<bool> unique = config::internal::AsBool(e.value);
          if (!unique) {
            FieldError(e, where, fmt::format("must be true or false, got {}", Describe(e.value)));
            continue;
          }
          if (!*unique) continue;  // nothing to check
        } else if (e.key == "freshness") {
          rule.kind = RuleKind::kFreshness;
          absl::StatusOr<absl::Duration> d =
              e.value.IsScalar()
                  ? ParseDuration(e.value.Scalar())
                  : absl::InvalidArgumentError(fmt::format(
                        "must be a duration like 12h or 400d, got {}", Describe(e.value)));
          if (d.ok() && *d <= absl::ZeroDuration()) {
            d = absl::InvalidArgumentError(
                fmt::format("must be a positive duration, got {}", Describe(e.value)));
          }
          if (!d.ok()) {
            FieldError(e, where, std::string(d.status().message()));
            continue;
          }
          rule.freshness_micros = absl::ToInt64Microseconds(*d);
        }
        if (ok) rules->rules.push_back(std::move(rule));
      }
    }
  }

  void ParseDistribution(const Entry& section, Level level, RuleSet* rules) {
    std::optional<std::vector<Entry>> entries = MapEntries(section, "distribution");
    if (!entries) return;
    rules->has_distribution = true;
    level = LevelOf(*entries, "distribution", level);
    bool has_columns = false;
    for (const Entry& e : *entries) {
      if (e.key == "reference") {
        if (!e.value.IsScalar() || e.value.Scalar().empty()) {
          FieldError(e, "distribution",
                     fmt::format("must be a dataset reference like customers@1, got {}",
                                 Describe(e.value)));
          continue;
        }
        rules->reference = e.value.Scalar();
        rules->reference_loc = e.value_loc;
      } else if (e.key == "columns") {
        has_columns = true;
        std::optional<std::vector<Entry>> columns = MapEntries(e, "distribution columns");
        if (!columns) continue;
        for (const Entry& col : *columns) {
          std::string where = fmt::format("distribution column '{}'", col.key);
          std::optional<std::vector<Entry>> stats = MapEntries(col, where);
          if (!stats) continue;
          Level col_level = LevelOf(*stats, where, level);
          for (const Entry& s : *stats) {
            if (s.key == "level") continue;
            if (s.key != "psi" && s.key != "ks") {
              UnknownKey(s, where, kDistColumnKeys);
              continue;
            }
            std::optional<double> t = config::internal::AsNumber(s.value);
            if (!t || *t < 0) {
              FieldError(
                  s, where,
                  fmt::format("must be a non-negative threshold, got {}", Describe(s.value)));
              continue;
            }
            Rule rule = MakeRule(s.key == "psi" ? RuleKind::kPsi : RuleKind::kKs, col.key,
                                 col_level, s.key_loc);
            rule.threshold = *t;
            rules->rules.push_back(std::move(rule));
          }
        }
      } else if (e.key != "level") {
        UnknownKey(e, "distribution", kDistributionKeys);
      }
    }
    if (!has_columns) {
      diags_->Add(section.key_loc,
                  "distribution needs columns: a mapping of column names to psi/ks thresholds");
    }
  }

  const YamlFile& file_;
  Diagnostics* diags_;
  bool bad_bound_ = false;
};

// ---- Checking -------------------------------------------------------------------------------

std::string Num(double v) { return fmt::format("{}", v); }
std::string Pct(double fraction) { return fmt::format("{:.4g}%", fraction * 100); }

// Collects up to kMaxSamples distinct texts, in the order offered.
class Samples {
 public:
  void Add(const std::string& text) {
    if (out_.size() >= kMaxSamples) return;
    if (std::find(out_.begin(), out_.end(), text) == out_.end()) out_.push_back(text);
  }
  bool full() const { return out_.size() >= kMaxSamples; }
  std::vector<std::string> Take() { return std::move(out_); }

 private:
  std::vector<std::string> out_;
};

const ColumnProfile* FindProfile(const Profile& p, const std::string& name) {
  for (const ColumnProfile& c : p.columns) {
    if (c.name == name) return &c;
  }
  return nullptr;
}

std::string TypeText(ColumnType t) { return std::string(TypeName(t)); }

class Checker {
 public:
  Checker(const Table& table, const ValidateOptions& opts, ValidationReport* report)
      : table_(table), opts_(opts), report_(report) {}

  void Add(const Rule& rule, std::string message, int64_t count,
           std::vector<std::string> samples = {}) {
    AddAs(std::string(RuleName(rule.kind)), rule.column, rule.level, std::move(message), count,
          std::move(samples));
  }

  void AddAs(std::string rule, std::string column, Level level, std::string message, int64_t count,
             std::vector<std::string> samples) {
    report_->violations.push_back(Violation{.rule = std::move(rule),
                                            .column = std::move(column),
                                            .level = std::string(LevelName(level)),
                                            .message = std::move(message),
                                            .count = count,
                                            .samples = std::move(samples)});
  }

  void Check(const Rule& rule, const Column* col) {
    switch (rule.kind) {
      case RuleKind::kRows:
        return CheckRows(rule);
      case RuleKind::kRequired:
        return;  // a present column passes; absent ones are reported once
      case RuleKind::kAllowExtra:
        return;  // needs the whole rule set, see Validate
      case RuleKind::kType:
        return CheckType(rule, *col);
      case RuleKind::kMaxMissing:
        return CheckMaxMissing(rule, *col);
      case RuleKind::kRange:
        return CheckRange(rule, *col);
      case RuleKind::kAllowed:
        return CheckAllowed(rule, *col);
      case RuleKind::kUnique:
        return CheckUnique(rule, *col);
      case RuleKind::kFreshness:
        return CheckFreshness(rule, *col);
      case RuleKind::kPsi:
      case RuleKind::kKs:
        return CheckDistribution(rule, *col);
    }
  }

 private:
  void CheckRows(const Rule& rule) {
    int64_t n = static_cast<int64_t>(table_.num_rows());
    if (rule.min_rows && n < *rule.min_rows) {
      Add(rule, fmt::format("{} rows, fewer than the minimum {}", n, *rule.min_rows), n);
    } else if (rule.max_rows && n > *rule.max_rows) {
      Add(rule, fmt::format("{} rows, more than the maximum {}", n, *rule.max_rows), n);
    }
  }

  void CheckType(const Rule& rule, const Column& col) {
    if (col.type() == rule.type) return;
    if (rule.type == ColumnType::kFloat64 && col.type() == ColumnType::kInt64) return;
    Add(rule,
        fmt::format("column '{}' is {}, expected {}", col.name(), TypeName(col.type()),
                    TypeName(rule.type)),
        1, {TypeText(col.type())});
  }

  void CheckMaxMissing(const Rule& rule, const Column& col) {
    int64_t nulls = static_cast<int64_t>(col.null_count());
    int64_t rows = static_cast<int64_t>(col.size());
    double fraction = rows == 0 ? 0.0 : static_cast<double>(nulls) / static_cast<double>(rows);
    if (fraction <= rule.max_missing) return;
    Add(rule,
        fmt::format("{} of {} values missing ({}), more than max_missing {}", nulls, rows,
                    Pct(fraction), Pct(rule.max_missing)),
        nulls);
  }

  std::string RangeText(const Rule& rule, ColumnType type) {
    auto bound = [&](const std::optional<double>& b, std::string_view open) -> std::string {
      if (!b) return std::string(open);
      if (type == ColumnType::kTimestamp) return FormatTimestamp(static_cast<int64_t>(*b));
      return Num(*b);
    };
    return fmt::format("[{}, {}]", bound(rule.min, "-inf"), bound(rule.max, "+inf"));
  }

  void CheckRange(const Rule& rule, const Column& col) {
    if (col.type() == ColumnType::kString) {
      Add(rule,
          fmt::format("range needs a numeric column; '{}' is string, not checked", col.name()), 1);
      return;
    }
    if (rule.timestamp_bounds && col.type() != ColumnType::kTimestamp) {
      Add(rule,
          fmt::format("range is written in timestamps but '{}' is {}, not checked", col.name(),
                      TypeName(col.type())),
          1);
      return;
    }
    double lo = rule.min.value_or(-HUGE_VAL);
    double hi = rule.max.value_or(HUGE_VAL);
    int64_t count = 0;
    Samples samples;
    for (size_t row = 0; row < col.size(); ++row) {
      if (col.is_null(row)) continue;
      double v = col.AsDouble(row);
      if (v >= lo && v <= hi) continue;  // false for NaN
      ++count;
      if (!samples.full()) samples.Add(col.ToText(row));
    }
    if (count == 0) return;
    Add(rule,
        fmt::format("{} {} outside {}", count, count == 1 ? "value" : "values",
                    RangeText(rule, col.type())),
        count, samples.Take());
  }

  void CheckAllowed(const Rule& rule, const Column& col) {
    std::unordered_set<std::string> allowed(rule.allowed.begin(), rule.allowed.end());
    int64_t count = 0;
    Samples samples;
    if (col.type() == ColumnType::kString) {
      // One lookup per dictionary entry, not per row.
      const std::vector<std::string>& dict = col.dictionary();
      std::vector<uint8_t> ok(dict.size());
      for (size_t c = 0; c < dict.size(); ++c) ok[c] = allowed.count(dict[c]) > 0;
      for (size_t row = 0; row < col.size(); ++row) {
        int32_t code = col.code_at(row);
        if (code < 0 || ok[static_cast<size_t>(code)]) continue;
        ++count;
        if (!samples.full()) samples.Add(dict[static_cast<size_t>(code)]);
      }
    } else {
      for (size_t row = 0; row < col.size(); ++row) {
        if (col.is_null(row)) continue;
        std::string text = col.ToText(row);
        if (allowed.count(text)) continue;
        ++count;
        samples.Add(text);
      }
    }
    if (count == 0) return;
    Add(rule,
        fmt::format("{} {} not in the allowed list ({})", count, count == 1 ? "value" : "values",
                    JoinNames(rule.allowed)),
        count, samples.Take());
  }

  void CheckUnique(const Rule& rule, const Column& col) {
    int64_t repeats = 0;
    Samples samples;
    auto repeat = [&](size_t row) {
      ++repeats;
      if (!samples.full()) samples.Add(col.ToText(row));
    };
    switch (col.type()) {
      case ColumnType::kString: {
        std::vector<uint8_t> seen(col.dictionary().size());
        for (size_t row = 0; row < col.size(); ++row) {
          int32_t code = col.code_at(row);
          if (code < 0) continue;
          if (seen[static_cast<size_t>(code)]++) repeat(row);
        }
        break;
      }
      case ColumnType::kFloat64: {
        std::unordered_set<uint64_t> seen;
        seen.reserve(col.size());
        for (size_t row = 0; row < col.size(); ++row) {
          if (col.is_null(row)) continue;
          double v = col.float_at(row);
          if (v == 0) v = 0;  // -0.0 and 0.0 are one value
          uint64_t bits;
          std::memcpy(&bits, &v, sizeof bits);
          if (!seen.insert(bits).second) repeat(row);
        }
        break;
      }
      default: {
        std::unordered_set<int64_t> seen;
        seen.reserve(col.size());
        for (size_t row = 0; row < col.size(); ++row) {
          if (col.is_null(row)) continue;
          if (!seen.insert(col.int_at(row)).second) repeat(row);
        }
        break;
      }
    }
    if (repeats == 0) return;
    Add(rule, fmt::format("{} duplicate {}", repeats, repeats == 1 ? "value" : "values"), repeats,
        samples.Take());
  }

  void CheckFreshness(const Rule& rule, const Column& col) {
    if (col.type() != ColumnType::kTimestamp) {
      Add(rule,
          fmt::format("freshness needs a timestamp column; '{}' is {}, not checked", col.name(),
                      TypeName(col.type())),
          1);
      return;
    }
    std::optional<int64_t> newest;
    for (size_t row = 0; row < col.size(); ++row) {
      if (col.is_null(row)) continue;
      if (!newest || col.int_at(row) > *newest) newest = col.int_at(row);
    }
    std::string limit = HumanAge(rule.freshness_micros);
    int64_t cutoff = opts_.now_micros - rule.freshness_micros;
    if (!newest) {
      Add(rule, fmt::format("no values, so none is newer than {} ago", limit), 1);
      return;
    }
    if (*newest >= cutoff) return;
    Add(rule,
        fmt::format("newest value is {} old, older than {} (cutoff {})",
                    HumanAge(opts_.now_micros - *newest), limit, FormatTimestamp(cutoff)),
        1, {FormatTimestamp(*newest)});
  }

  // "400d", "12h", "30m", "1d 2h": whole units, as the rules are written.
  static std::string HumanAge(int64_t micros) {
    int64_t s = micros / 1000000;
    int64_t d = s / 86400, h = (s % 86400) / 3600, m = (s % 3600) / 60, sec = s % 60;
    std::string out;
    auto part = [&](int64_t v, char unit) {
      if (v == 0) return;
      if (!out.empty()) out += ' ';
      out += fmt::format("{}{}", v, unit);
    };
    part(d, 'd');
    part(h, 'h');
    part(m, 'm');
    part(sec, 's');
    return out.empty() ? "0s" : out;
  }

  void CheckDistribution(const Rule& rule, const Column& col) {
    const ColumnProfile* ref = FindProfile(*opts_.reference, rule.column);
    if (ref == nullptr) {
      Add(rule, fmt::format("column '{}' is not in the reference profile, not checked", col.name()),
          1);
      return;
    }
    bool ref_string = ref->type == ColumnType::kString;
    bool cur_string = col.type() == ColumnType::kString;
    if (ref_string != cur_string) {
      Add(rule,
          fmt::format("column '{}' is {} but {} in the reference, not checked", col.name(),
                      TypeName(col.type()), TypeName(ref->type)),
          1);
      return;
    }
    if (rule.kind == RuleKind::kKs && cur_string) {
      Add(rule, fmt::format("ks needs a numeric column; '{}' is string, not checked", col.name()),
          1);
      return;
    }
    std::optional<double> stat;
    std::string detail;  // how the statistic was computed, or why it could not be
    if (rule.kind == RuleKind::kPsi) {
      stat = cur_string ? CategoryPsi(*ref, col, &detail) : NumericPsi(*ref, col, &detail);
    } else {
      stat = Ks(*ref, col, &detail);
    }
    if (!stat) {
      Add(rule, detail, 1);
      return;
    }
    if (*stat <= rule.threshold) return;
    Add(rule,
        fmt::format("{} {:.4f} above the threshold {} ({})", RuleName(rule.kind), *stat,
                    Num(rule.threshold), detail),
        1, {fmt::format("{:.4f}", *stat)});
  }

  static double Psi(const std::vector<double>& ref, const std::vector<double>& cur) {
    double ref_total = 0, cur_total = 0;
    for (double r : ref) ref_total += r;
    for (double c : cur) cur_total += c;
    double psi = 0;
    for (size_t i = 0; i < ref.size(); ++i) {
      double p = std::max(ref[i] / ref_total, kPsiEpsilon);
      double q = std::max(cur[i] / cur_total, kPsiEpsilon);
      psi += (q - p) * std::log(q / p);
    }
    return psi;
  }

  // The non-NaN, non-null values of a numeric column, in row order.
  static std::vector<double> Values(const Column& col) {
    std::vector<double> v;
    v.reserve(col.size());
    for (size_t row = 0; row < col.size(); ++row) {
      if (col.is_null(row)) continue;
      double x = col.AsDouble(row);
      if (!std::isnan(x)) v.push_back(x);
    }
    return v;
  }

  static bool UsableHistogram(const Histogram& h) {
    if (h.edges.size() < 2 || h.counts.size() + 1 != h.edges.size()) return false;
    int64_t total = 0;
    for (int64_t c : h.counts) total += c;
    return total > 0;
  }

  std::optional<double> NumericPsi(const ColumnProfile& ref, const Column& col,
                                   std::string* detail) {
    const Histogram& h = ref.histogram;
    if (!UsableHistogram(h)) {
      *detail =
          fmt::format("the reference profile of '{}' has no histogram, not checked", col.name());
      return std::nullopt;
    }
    std::vector<double> values = Values(col);
    if (values.empty()) {
      *detail = fmt::format("column '{}' has no values to compare, not checked", col.name());
      return std::nullopt;
    }
    size_t bins = h.counts.size();
    std::vector<double> cur(bins, 0.0), refc(bins);
    for (size_t i = 0; i < bins; ++i) refc[i] = static_cast<double>(h.counts[i]);
    for (double x : values) {
      // Bins are [e_i, e_i+1), the last one closed; outside values go to the end bins.
      size_t upper = static_cast<size_t>(std::upper_bound(h.edges.begin(), h.edges.end(), x) -
                                         h.edges.begin());
      size_t bin = upper == 0 ? 0 : std::min(upper - 1, bins - 1);
      cur[bin] += 1;
    }
    *detail = fmt::format("{} bins, {} values against {} in the reference", bins, values.size(),
                          ref.count);
    return Psi(refc, cur);
  }

  std::optional<double> CategoryPsi(const ColumnProfile& ref, const Column& col,
                                    std::string* detail) {
    if (ref.top.empty()) {
      *detail =
          fmt::format("the reference profile of '{}' has no categories, not checked", col.name());
      return std::nullopt;
    }
    // Buckets: the reference's top categories, then "other".
    size_t k = ref.top.size();
    std::vector<double> refc(k + 1, 0.0), cur(k + 1, 0.0);
    std::unordered_map<std::string, size_t> bucket;
    double top_total = 0;
    for (size_t i = 0; i < k; ++i) {
      bucket.emplace(ref.top[i].first, i);
      refc[i] = static_cast<double>(ref.top[i].second);
      top_total += refc[i];
    }
    refc[k] = std::max(0.0, static_cast<double>(ref.count) - top_total);
    std::vector<size_t> code_bucket(col.dictionary().size());
    for (size_t c = 0; c < code_bucket.size(); ++c) {
      auto it = bucket.find(col.dictionary()[c]);
      code_bucket[c] = it == bucket.end() ? k : it->second;
    }
    int64_t n = 0;
    for (size_t row = 0; row < col.size(); ++row) {
      int32_t code = col.code_at(row);
      if (code < 0) continue;
      cur[code_bucket[static_cast<size_t>(code)]] += 1;
      ++n;
    }
    if (n == 0) {
      *detail = fmt::format("column '{}' has no values to compare, not checked", col.name());
      return std::nullopt;
    }
    *detail = fmt::format("{} categories + other, {} values against {} in the reference", k, n,
                          ref.count);
    return Psi(refc, cur);
  }

  // The reference CDF, piecewise linear inside each histogram bin; `left` gives the limit from
  // the left, which differs from the value where bins have zero width.
  static double RefCdf(const Histogram& h, const std::vector<double>& cum, double total, double x,
                       bool left) {
    const std::vector<double>& e = h.edges;
    if (left ? x <= e.front() : x < e.front()) return 0;
    if (left ? x > e.back() : x >= e.back()) return 1;
    // Segment j with e_j <= x < e_j+1 (or e_j < x <= e_j+1 from the left), so it has width.
    auto it =
        left ? std::lower_bound(e.begin(), e.end(), x) : std::upper_bound(e.begin(), e.end(), x);
    size_t j = static_cast<size_t>(it - e.begin()) - 1;
    double frac = (x - e[j]) / (e[j + 1] - e[j]);
    return (cum[j] + static_cast<double>(h.counts[j]) * frac) / total;
  }

  std::optional<double> Ks(const ColumnProfile& ref, const Column& col, std::string* detail) {
    const Histogram& h = ref.histogram;
    if (!UsableHistogram(h)) {
      *detail =
          fmt::format("the reference profile of '{}' has no histogram, not checked", col.name());
      return std::nullopt;
    }
    std::vector<double> values = Values(col);
    std::sort(values.begin(), values.end());
    if (values.empty()) {
      *detail = fmt::format("column '{}' has no values to compare, not checked", col.name());
      return std::nullopt;
    }
    std::vector<double> cum(h.counts.size() + 1, 0.0);
    for (size_t i = 0; i < h.counts.size(); ++i)
      cum[i + 1] = cum[i] + static_cast<double>(h.counts[i]);
    double total = cum.back();
    double n = static_cast<double>(values.size());
    // Both CDFs are monotone and continuous between the data points and the edges, so the
    // supremum of the difference is reached at one of them, from the left or at the point.
    std::vector<double> points = values;
    points.insert(points.end(), h.edges.begin(), h.edges.end());
    double d = 0;
    for (double x : points) {
      double below =
          static_cast<double>(std::lower_bound(values.begin(), values.end(), x) - values.begin());
      double upto =
          static_cast<double>(std::upper_bound(values.begin(), values.end(), x) - values.begin());
      d = std::max(d, std::abs(RefCdf(h, cum, total, x, true) - below / n));
      d = std::max(d, std::abs(RefCdf(h, cum, total, x, false) - upto / n));
    }
    *detail = fmt::format("{} values against the reference histogram of {} bins", values.size(),
                          h.counts.size());
    return d;
  }

  const Table& table_;
  const ValidateOptions& opts_;
  ValidationReport* report_;
};

}  // namespace

std::string_view RuleName(RuleKind kind) {
  switch (kind) {
    case RuleKind::kRows:
      return "rows";
    case RuleKind::kRequired:
      return "required";
    case RuleKind::kAllowExtra:
      return "allow_extra";
    case RuleKind::kType:
      return "type";
    case RuleKind::kMaxMissing:
      return "max_missing";
    case RuleKind::kRange:
      return "range";
    case RuleKind::kAllowed:
      return "allowed";
    case RuleKind::kUnique:
      return "unique";
    case RuleKind::kFreshness:
      return "freshness";
    case RuleKind::kPsi:
      return "psi";
    case RuleKind::kKs:
      return "ks";
  }
  return "?";
}

std::string_view LevelName(Level level) { return level == Level::kError ? "error" : "warning"; }

absl::StatusOr<RuleSet> ParseRules(std::string_view yaml, const std::string& source_name) {
  Diagnostics diags;
  YamlFile file{source_name, std::string(yaml), YAML::Node()};
  // yaml-cpp reports errors by throwing; this is the edge where they become diagnostics.
  try {
    file.root = YAML::Load(file.text);
  } catch (const YAML::Exception& e) {
    SourceLoc loc{source_name, 0, 0};
    if (!e.mark.is_null()) loc = SourceLoc{source_name, e.mark.line + 1, e.mark.column + 1};
    diags.Add(loc, fmt::format("invalid YAML: {}", e.msg));
    return diags.ToStatus();
  }
  RuleSet rules = RulesParser(file, &diags).Parse();
  FERRY_RETURN_IF_ERROR(diags.ToStatus());
  return rules;
}

absl::StatusOr<RuleSet> LoadRules(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    if (absl::IsNotFound(text.status())) {
      return absl::NotFoundError(fmt::format("rules file {} does not exist", path));
    }
    return text.status();
  }
  return ParseRules(*text, path);
}

int ValidationReport::errors() const {
  return static_cast<int>(std::count_if(violations.begin(), violations.end(),
                                        [](const Violation& v) { return v.level == "error"; }));
}

int ValidationReport::warnings() const { return static_cast<int>(violations.size()) - errors(); }

nlohmann::ordered_json ValidationReport::ToJson() const {
  nlohmann::ordered_json j;
  j["dataset"] = dataset;
  j["rows"] = rows;
  j["passed"] = passed();
  j["errors"] = errors();
  j["warnings"] = warnings();
  j["rules_checked"] = rules_checked;
  j["violations"] = nlohmann::ordered_json::array();
  for (const Violation& v : violations) {
    nlohmann::ordered_json o;
    o["rule"] = v.rule;
    o["column"] = v.column;
    o["level"] = v.level;
    o["message"] = v.message;
    o["count"] = v.count;
    o["samples"] = v.samples;
    j["violations"].push_back(std::move(o));
  }
  return j;
}

std::string ValidationReport::ToText() const {
  int e = errors(), w = warnings();
  std::string out = fmt::format("dataset {}: {} rows, {} rules checked: {} ({} {}, {} {})\n",
                                dataset.empty() ? "-" : dataset, rows, rules_checked,
                                passed() ? "PASSED" : "FAILED", e, e == 1 ? "error" : "errors", w,
                                w == 1 ? "warning" : "warnings");
  if (violations.empty()) return out;
  std::vector<std::vector<std::string>> cells;
  cells.push_back({"LEVEL", "RULE", "COLUMN", "COUNT", "SAMPLES", "MESSAGE"});
  for (const Violation& v : violations) {
    cells.push_back({v.level, v.rule, v.column.empty() ? "-" : v.column, fmt::format("{}", v.count),
                     v.samples.empty() ? "-" : JoinNames(v.samples), v.message});
  }
  std::vector<size_t> width(cells.front().size(), 0);
  for (const auto& row : cells) {
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      if (i + 1 == row.size()) {
        line += row[i];  // the message: no padding at the end of a line
      } else if (i == 3) {
        line += fmt::format("{:>{}}  ", row[i], width[i]);  // counts right-aligned
      } else {
        line += fmt::format("{:<{}}  ", row[i], width[i]);
      }
    }
    out += line + '\n';
  }
  return out;
}

ValidationReport Validate(const RuleSet& rules, const Table& table, const ValidateOptions& opts) {
  ValidationReport report;
  report.dataset = opts.dataset;
  report.rows = static_cast<int64_t>(table.num_rows());
  report.rules_checked = static_cast<int>(rules.rules.size());
  Checker checker(table, opts, &report);

  // Columns the rules name but the table lacks: one violation each, where the first rule on
  // the column stands, covering all of its rules.
  std::map<std::string, std::vector<const Rule*>> missing;
  std::set<std::string> named;
  for (const Rule& r : rules.rules) {
    if (r.column.empty()) continue;
    named.insert(r.column);
    if (table.Find(r.column) == nullptr) missing[r.column].push_back(&r);
  }
  std::set<std::string> reported_missing;
  bool reported_reference = false;

  for (const Rule& rule : rules.rules) {
    if (rule.kind == RuleKind::kAllowExtra) {
      std::vector<std::string> extra;
      for (const Column& c : table.columns()) {
        if (!named.count(c.name())) extra.push_back(c.name());
      }
      if (extra.empty()) continue;
      std::vector<std::string> samples(extra.begin(),
                                       extra.begin() + std::min(extra.size(), kMaxSamples));
      checker.Add(rule,
                  fmt::format("{} {} not named in the rules: {}", extra.size(),
                              extra.size() == 1 ? "column" : "columns", JoinNames(extra)),
                  static_cast<int64_t>(extra.size()), std::move(samples));
      continue;
    }
    if (auto it = missing.find(rule.column); it != missing.end()) {
      if (!reported_missing.insert(rule.column).second) continue;
      bool required = false;
      Level level = Level::kWarning;
      std::vector<std::string> unchecked;
      for (const Rule* r : it->second) {
        if (r->level == Level::kError) level = Level::kError;
        if (r->kind == RuleKind::kRequired) {
          required = true;
        } else {
          unchecked.emplace_back(RuleName(r->kind));
        }
      }
      std::string message = fmt::format("column '{}' is missing", rule.column);
      if (!unchecked.empty()) {
        message += fmt::format("; not checked: {}", JoinNames(unchecked));
      }
      checker.AddAs(required ? "required" : "column", rule.column, level, std::move(message), 1,
                    {rule.column});
      continue;
    }
    if ((rule.kind == RuleKind::kPsi || rule.kind == RuleKind::kKs) && opts.reference == nullptr) {
      if (reported_reference) continue;
      reported_reference = true;
      Level level = Level::kWarning;
      int n = 0;
      for (const Rule& r : rules.rules) {
        if (r.kind != RuleKind::kPsi && r.kind != RuleKind::kKs) continue;
        ++n;
        if (r.level == Level::kError) level = Level::kError;
      }
      checker.AddAs("reference", "", level,
                    fmt::format("no reference profile given{}; {} distribution {} not checked",
                                rules.reference.empty() ? std::string()
                                                        : fmt::format(" for {}", rules.reference),
                                n, n == 1 ? "rule" : "rules"),
                    1, {});
      continue;
    }
    checker.Check(rule, rule.column.empty() ? nullptr : table.Find(rule.column));
  }
  return report;
}

}  // namespace ferry::data
