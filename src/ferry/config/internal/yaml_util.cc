#include "ferry/config/internal/yaml_util.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <limits>
#include <map>

#include "ferry/common/fs.h"
#include "ferry/common/ids.h"
#include "ferry/common/units.h"
#include "ferry/config/internal/template_scan.h"
#include "ferry/config/templating.h"
#include "fmt/format.h"

namespace ferry::config::internal {
namespace {

// yaml-cpp tags a quoted or block scalar "!" and a plain one "?"; an explicit !!str also makes
// a string.
bool IsStringTagged(const YAML::Node& node) {
  return node.Tag() == "!" || node.Tag() == "tag:yaml.org,2002:str";
}

bool IsDigits(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// [-+]? digits
bool LooksLikeInt(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  return IsDigits(s);
}

// [-+]? (digits [. digits?] | . digits) ([eE] [-+]? digits)?
bool LooksLikeFloat(std::string_view s) {
  if (!s.empty() && (s[0] == '-' || s[0] == '+')) s.remove_prefix(1);
  size_t e = s.find_first_of("eE");
  std::string_view mantissa = s.substr(0, e);
  if (e != std::string_view::npos) {
    std::string_view exp = s.substr(e + 1);
    if (!exp.empty() && (exp[0] == '-' || exp[0] == '+')) exp.remove_prefix(1);
    if (!IsDigits(exp)) return false;
  }
  size_t dot = mantissa.find('.');
  if (dot == std::string_view::npos) return IsDigits(mantissa);
  std::string_view whole = mantissa.substr(0, dot);
  std::string_view frac = mantissa.substr(dot + 1);
  if (whole.empty()) return IsDigits(frac);
  return IsDigits(whole) && (frac.empty() || IsDigits(frac));
}

std::optional<int64_t> ParseInt(std::string_view s) {
  if (!LooksLikeInt(s)) return std::nullopt;
  if (s[0] == '+') s.remove_prefix(1);
  int64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<double> ParseFloat(std::string_view s) {
  if (!LooksLikeFloat(s)) return std::nullopt;
  if (s[0] == '+') s.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

std::optional<bool> ParseBool(std::string_view s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

bool IsEnvName(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name[0]))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

void AddFieldError(const Entry& e, std::string_view where, std::string_view why,
                   Diagnostics* diags) {
  diags->Add(e.value_loc, fmt::format("invalid {} in {}: {}", e.key, where, why));
}

std::optional<absl::Duration> DurationField(const Entry& e, std::string_view where,
                                            Diagnostics* diags) {
  if (!e.value.IsScalar()) {
    AddFieldError(e, where,
                  fmt::format("must be a duration like 30s or 10m, got {}", Describe(e.value)),
                  diags);
    return std::nullopt;
  }
  absl::StatusOr<absl::Duration> d = ParseDuration(e.value.Scalar());
  if (!d.ok()) {
    AddFieldError(e, where, std::string(d.status().message()), diags);
    return std::nullopt;
  }
  return *d;
}

std::optional<int> NonNegativeIntField(const Entry& e, std::string_view where, Diagnostics* diags) {
  std::optional<int64_t> v = AsInt(e.value);
  if (!v || *v < 0 || *v > std::numeric_limits<int>::max()) {
    AddFieldError(e, where,
                  fmt::format("must be a non-negative integer, got {}", Describe(e.value)), diags);
    return std::nullopt;
  }
  return static_cast<int>(*v);
}

void ParseEnv(const YamlFile& file, const Entry& e, std::string_view where, ResourceSpec* spec,
              Diagnostics* diags) {
  if (!e.value.IsMap()) {
    AddFieldError(
        e, where,
        fmt::format("must be a mapping of variable names to values, got {}", Describe(e.value)),
        diags);
    return;
  }
  for (const Entry& var : Entries(file, e.value, diags)) {
    if (!IsEnvName(var.key)) {
      diags->Add(var.key_loc,
                 fmt::format("invalid environment variable name '{}' in {}: use letters, digits "
                             "and '_', not starting with a digit",
                             var.key, where));
      continue;
    }
    if (!var.value.IsScalar()) {
      diags->Add(var.value_loc, fmt::format("env {} in {} must be a string, number or bool, got "
                                            "{} (write \"\" for an empty value)",
                                            var.key, where, Describe(var.value)));
      continue;
    }
    spec->env[var.key] = var.value.Scalar();
  }
}

}  // namespace

std::optional<YamlFile> LoadYamlFile(const std::string& path, Diagnostics* diags) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    diags->Add(SourceLoc{path, 0, 0}, absl::IsNotFound(text.status())
                                          ? std::string("no such file")
                                          : std::string(text.status().message()));
    return std::nullopt;
  }
  YamlFile file{path, std::move(*text), YAML::Node()};
  // yaml-cpp reports errors by throwing; this is the edge where they become diagnostics.
  try {
    file.root = YAML::Load(file.text);
  } catch (const YAML::Exception& e) {
    SourceLoc loc{path, 0, 0};
    if (!e.mark.is_null()) loc = SourceLoc{path, e.mark.line + 1, e.mark.column + 1};
    diags->Add(loc, fmt::format("invalid YAML: {}", e.msg));
    return std::nullopt;
  }
  return file;
}

std::vector<Entry> Entries(const YamlFile& file, const YAML::Node& map, Diagnostics* diags) {
  std::vector<Entry> out;
  std::map<std::string, int> first_line;
  for (const auto& kv : map) {
    SourceLoc key_loc = LocOf(file, kv.first);
    if (!kv.first.IsScalar()) {
      diags->Add(key_loc, fmt::format("a key must be a name, got {}", Describe(kv.first)));
      continue;
    }
    const std::string& key = kv.first.Scalar();
    auto [it, inserted] = first_line.emplace(key, key_loc.line);
    if (!inserted) {
      diags->Add(key_loc,
                 fmt::format("duplicate key '{}' (first set on line {})", key, it->second));
      continue;
    }
    SourceLoc value_loc = kv.second.IsNull() ? key_loc : LocOf(file, kv.second);
    out.push_back(Entry{key, kv.second, key_loc, value_loc});
  }
  return out;
}

SourceLoc LocOf(const YamlFile& file, const YAML::Node& node) {
  YAML::Mark mark = node.Mark();
  if (mark.is_null()) return SourceLoc{file.path, 0, 0};
  return SourceLoc{file.path, mark.line + 1, mark.column + 1};
}

SourceLoc LocInScalar(const YamlFile& file, const YAML::Node& node, size_t offset) {
  SourceLoc loc = LocOf(file, node);
  YAML::Mark mark = node.Mark();
  const std::string& value = node.Scalar();
  std::string_view src = file.text;
  if (mark.is_null() || mark.pos < 0 || static_cast<size_t>(mark.pos) >= src.size() ||
      offset >= value.size()) {
    return loc;
  }
  size_t pos = static_cast<size_t>(mark.pos);
  char opener = src[pos];
  if (opener == '>') return loc;  // folded: lines of the value are not lines of the file
  if (opener == '|') {
    // A literal block keeps lines one to one: line k of the value is line k after the `|`,
    // written at the end of it behind the indentation.
    size_t k = static_cast<size_t>(std::count(value.begin(), value.begin() + offset, '\n'));
    size_t line_start = 0;
    if (offset > 0) {
      size_t newline = value.rfind('\n', offset - 1);
      if (newline != std::string::npos) line_start = newline + 1;
    }
    size_t line_end = std::min(value.find('\n', offset), value.size());
    std::string_view value_line = std::string_view(value).substr(line_start, line_end - line_start);
    size_t s = pos;
    for (size_t i = 0; i <= k; ++i) {
      s = src.find('\n', s);
      if (s == std::string_view::npos) return loc;
      ++s;
    }
    size_t e = std::min(src.find('\n', s), src.size());
    std::string_view src_line = src.substr(s, e - s);
    if (!src_line.empty() && src_line.back() == '\r') src_line.remove_suffix(1);
    if (src_line.size() < value_line.size() ||
        src_line.substr(src_line.size() - value_line.size()) != value_line) {
      return loc;
    }
    loc.line = mark.line + 1 + static_cast<int>(k) + 1;
    loc.column = static_cast<int>(src_line.size() - value_line.size() + offset - line_start) + 1;
    return loc;
  }
  // Plain or quoted on one line: the text up to the byte must appear verbatim after the mark
  // (and its opening quote).
  size_t start = pos + (opener == '"' || opener == '\'' ? 1 : 0);
  std::string_view prefix = std::string_view(value).substr(0, offset + 1);
  if (prefix.find('\n') != std::string_view::npos || src.substr(start, prefix.size()) != prefix) {
    return loc;
  }
  loc.column += static_cast<int>(start - pos + offset);
  return loc;
}

std::string Describe(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Sequence:
      return "a list";
    case YAML::NodeType::Map:
      return "a mapping";
    case YAML::NodeType::Scalar:
      return fmt::format("'{}'", node.Scalar());
    default:
      return "nothing";
  }
}

std::optional<int64_t> AsInt(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  return ParseInt(node.Scalar());
}

std::optional<double> AsNumber(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  return ParseFloat(node.Scalar());
}

std::optional<bool> AsBool(const YAML::Node& node) {
  if (!node.IsScalar()) return std::nullopt;
  return ParseBool(node.Scalar());
}

nlohmann::json ToJson(const YAML::Node& node) {
  switch (node.Type()) {
    case YAML::NodeType::Scalar: {
      const std::string& text = node.Scalar();
      if (IsStringTagged(node)) return text;
      if (std::optional<bool> b = ParseBool(text)) return *b;
      if (std::optional<int64_t> i = ParseInt(text)) return *i;
      if (std::optional<double> f = ParseFloat(text)) return *f;
      return text;
    }
    case YAML::NodeType::Sequence: {
      nlohmann::json array = nlohmann::json::array();
      for (const YAML::Node& item : node) array.push_back(ToJson(item));
      return array;
    }
    case YAML::NodeType::Map: {
      nlohmann::json object = nlohmann::json::object();
      for (const auto& kv : node) object[kv.first.Scalar()] = ToJson(kv.second);
      return object;
    }
    default:
      return nullptr;
  }
}

std::string InvalidNameMessage(std::string_view what, std::string_view name) {
  return fmt::format(
      "invalid {} name '{}': use letters, digits, '_', '-' and '.', starting with a letter, digit "
      "or '_' (at most 128 characters, no '..')",
      what, name);
}

const std::vector<std::string>& ResourceKeys() {
  static const std::vector<std::string> keys = {
      "cpu",   "memory", "gpu", "timeout", "retries", "retry_backoff", "retry_backoff_max",
      "image", "env"};
  return keys;
}

void ParseResourceField(const YamlFile& file, const Entry& e, std::string_view where,
                        ResourceSpec* spec, Diagnostics* diags) {
  if (e.key == "cpu") {
    std::optional<double> v = AsNumber(e.value);
    if (!v || *v <= 0) {
      AddFieldError(e, where,
                    fmt::format("must be a positive number of cores, got {}", Describe(e.value)),
                    diags);
      return;
    }
    spec->cpu = *v;
  } else if (e.key == "memory") {
    if (!e.value.IsScalar()) {
      AddFieldError(e, where,
                    fmt::format("must be a size like 512Mi or 2Gi, got {}", Describe(e.value)),
                    diags);
      return;
    }
    absl::StatusOr<int64_t> bytes = ParseBytes(e.value.Scalar());
    if (!bytes.ok()) {
      AddFieldError(e, where, std::string(bytes.status().message()), diags);
      return;
    }
    spec->memory_bytes = *bytes;
  } else if (e.key == "gpu") {
    spec->gpu = NonNegativeIntField(e, where, diags);
  } else if (e.key == "timeout") {
    spec->timeout = DurationField(e, where, diags);
  } else if (e.key == "retries") {
    spec->retries = NonNegativeIntField(e, where, diags);
  } else if (e.key == "retry_backoff") {
    spec->retry_backoff = DurationField(e, where, diags);
  } else if (e.key == "retry_backoff_max") {
    spec->retry_backoff_max = DurationField(e, where, diags);
  } else if (e.key == "image") {
    if (!e.value.IsScalar() || e.value.Scalar().empty()) {
      AddFieldError(e, where,
                    fmt::format("must be a container image name, got {}", Describe(e.value)),
                    diags);
      return;
    }
    spec->image = e.value.Scalar();
  } else if (e.key == "env") {
    ParseEnv(file, e, where, spec, diags);
  }
}

std::vector<Param> ParseParams(const YamlFile& file, const Entry& entry, Diagnostics* diags) {
  std::vector<Param> params;
  if (entry.value.IsNull()) return params;
  if (!entry.value.IsMap()) {
    diags->Add(entry.value_loc,
               fmt::format("params must be a mapping of parameter names to default values, got {}",
                           Describe(entry.value)));
    return params;
  }
  for (const Entry& p : Entries(file, entry.value, diags)) {
    bool ok = true;
    if (!IsValidName(p.key)) {
      diags->Add(p.key_loc, InvalidNameMessage("parameter", p.key));
      ok = false;
    }
    if (!p.value.IsScalar()) {
      diags->Add(p.value_loc, fmt::format("param '{}' must be a string, number or bool, got {}",
                                          p.key, Describe(p.value)));
      continue;
    }
    CheckTemplates(file, p.value, nullptr, diags);
    if (ok) params.push_back(Param{p.key, ToJson(p.value), p.key_loc});
  }
  return params;
}

void CheckTemplates(const YamlFile& file, const YAML::Node& node,
                    const std::vector<std::string>* params, Diagnostics* diags) {
  if (node.IsSequence()) {
    for (const YAML::Node& item : node) CheckTemplates(file, item, params, diags);
    return;
  }
  if (node.IsMap()) {
    for (const auto& kv : node) {
      // An unquoted value that starts with "{{" is a YAML flow mapping whose key is a mapping;
      // nobody means that, everybody forgets the quotes.
      if (kv.first.IsMap()) {
        diags->Add(LocOf(file, node),
                   "a value that starts with '{{' must be quoted, e.g. \"{{ params.x }}\"; "
                   "unquoted, YAML reads it as a mapping");
        return;
      }
    }
    for (const auto& kv : node) CheckTemplates(file, kv.second, params, diags);
    return;
  }
  if (!node.IsScalar()) return;
  const std::string& text = node.Scalar();
  TemplateScan scan = ScanTemplateRefs(text);
  static const std::vector<std::string> kNoParams;
  for (const TemplateRef& ref : scan.refs) {
    std::string why;
    if (params == nullptr && ref.expr.rfind("params.", 0) == 0) {
      why = fmt::format(
          "a parameter's value cannot use {{{{ {} }}}}: parameters may refer only "
          "to run.id, run.date, run.ts, run.pipeline and today",
          ref.expr);
    } else {
      why = CheckTemplateExpr(ref.expr, params != nullptr ? *params : kNoParams);
    }
    if (!why.empty()) diags->Add(LocInScalar(file, node, ref.offset), why);
  }
  if (scan.unclosed) {
    diags->Add(LocInScalar(file, node, *scan.unclosed), std::string(kUnclosedMessage));
  }
}

}  // namespace ferry::config::internal
