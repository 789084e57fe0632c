#include "ferry/data/table.h"

#include <charconv>
#include <cmath>
#include <ctime>

#include "ferry/common/status.h"
#include "fmt/format.h"

namespace ferry::data {

std::string_view TypeName(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64:
      return "int64";
    case ColumnType::kFloat64:
      return "float64";
    case ColumnType::kString:
      return "string";
    case ColumnType::kBool:
      return "bool";
    case ColumnType::kTimestamp:
      return "timestamp";
  }
  return "?";
}

absl::StatusOr<ColumnType> ParseTypeName(std::string_view name) {
  static const std::unordered_map<std::string_view, ColumnType> kNames = {
      {"int64", ColumnType::kInt64},         {"int", ColumnType::kInt64},
      {"integer", ColumnType::kInt64},       {"float64", ColumnType::kFloat64},
      {"float", ColumnType::kFloat64},       {"double", ColumnType::kFloat64},
      {"number", ColumnType::kFloat64},      {"string", ColumnType::kString},
      {"str", ColumnType::kString},          {"text", ColumnType::kString},
      {"category", ColumnType::kString},     {"categorical", ColumnType::kString},
      {"bool", ColumnType::kBool},           {"boolean", ColumnType::kBool},
      {"timestamp", ColumnType::kTimestamp}, {"datetime", ColumnType::kTimestamp},
  };
  if (auto it = kNames.find(name); it != kNames.end()) return it->second;
  return absl::InvalidArgumentError(fmt::format(
      "unknown column type '{}'; use one of int64, float64, string, bool, timestamp", name));
}

bool IsNumeric(ColumnType t) { return t != ColumnType::kString; }

size_t Column::null_count() const {
  size_t n = 0;
  for (uint8_t v : valid_) n += v == 0;
  return n;
}

std::string_view Column::string_at(size_t row) const {
  int32_t c = codes_[row];
  return c < 0 ? std::string_view() : std::string_view(dict_[static_cast<size_t>(c)]);
}

double Column::AsDouble(size_t row) const {
  switch (type_) {
    case ColumnType::kFloat64:
      return doubles_[row];
    case ColumnType::kString:
      return std::nan("");
    default:
      return static_cast<double>(ints_[row]);
  }
}

std::string Column::ToText(size_t row) const {
  if (is_null(row)) return "";
  switch (type_) {
    case ColumnType::kInt64:
      return fmt::format("{}", ints_[row]);
    case ColumnType::kFloat64:
      return fmt::format("{}", doubles_[row]);  // shortest round-trip
    case ColumnType::kString:
      return std::string(string_at(row));
    case ColumnType::kBool:
      return ints_[row] != 0 ? "true" : "false";
    case ColumnType::kTimestamp:
      return FormatTimestamp(ints_[row]);
  }
  return "";
}

void Column::AppendNull() {
  valid_.push_back(0);
  switch (type_) {
    case ColumnType::kFloat64:
      doubles_.push_back(0.0);
      break;
    case ColumnType::kString:
      codes_.push_back(-1);
      break;
    default:
      ints_.push_back(0);
      break;
  }
}

void Column::AppendInt(int64_t v) {
  FERRY_CHECK(type_ == ColumnType::kInt64 || type_ == ColumnType::kBool ||
              type_ == ColumnType::kTimestamp);
  valid_.push_back(1);
  ints_.push_back(v);
}

void Column::AppendDouble(double v) {
  FERRY_CHECK(type_ == ColumnType::kFloat64);
  valid_.push_back(1);
  doubles_.push_back(v);
}

void Column::AppendString(std::string_view v) {
  FERRY_CHECK(type_ == ColumnType::kString);
  valid_.push_back(1);
  codes_.push_back(Intern(v));
}

void Column::AppendFrom(const Column& other, size_t row) {
  FERRY_CHECK(other.type_ == type_);
  if (other.is_null(row)) {
    AppendNull();
    return;
  }
  switch (type_) {
    case ColumnType::kFloat64:
      AppendDouble(other.doubles_[row]);
      break;
    case ColumnType::kString:
      AppendString(other.string_at(row));
      break;
    default:
      AppendInt(other.ints_[row]);
      break;
  }
}

void Column::AppendColumn(const Column& other) {
  FERRY_CHECK(other.type_ == type_);
  valid_.insert(valid_.end(), other.valid_.begin(), other.valid_.end());
  switch (type_) {
    case ColumnType::kFloat64:
      doubles_.insert(doubles_.end(), other.doubles_.begin(), other.doubles_.end());
      break;
    case ColumnType::kString: {
      std::vector<int32_t> remap(other.dict_.size());
      for (size_t i = 0; i < other.dict_.size(); ++i) remap[i] = Intern(other.dict_[i]);
      codes_.reserve(codes_.size() + other.codes_.size());
      for (int32_t c : other.codes_) codes_.push_back(c < 0 ? -1 : remap[static_cast<size_t>(c)]);
      break;
    }
    default:
      ints_.insert(ints_.end(), other.ints_.begin(), other.ints_.end());
      break;
  }
}

void Column::Reserve(size_t rows) {
  valid_.reserve(rows);
  switch (type_) {
    case ColumnType::kFloat64:
      doubles_.reserve(rows);
      break;
    case ColumnType::kString:
      codes_.reserve(rows);
      break;
    default:
      ints_.reserve(rows);
      break;
  }
}

int32_t Column::CodeOf(std::string_view s) const {
  auto it = index_.find(std::string(s));
  return it == index_.end() ? -1 : it->second;
}

int32_t Column::Intern(std::string_view s) {
  auto [it, inserted] = index_.try_emplace(std::string(s), static_cast<int32_t>(dict_.size()));
  if (inserted) dict_.emplace_back(s);
  return it->second;
}

const Column& Table::column(std::string_view name) const {
  const Column* c = Find(name);
  FERRY_CHECK(c != nullptr);
  return *c;
}

const Column* Table::Find(std::string_view name) const {
  for (const Column& c : columns_) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

Column* Table::FindMutable(std::string_view name) {
  for (Column& c : columns_) {
    if (c.name() == name) return &c;
  }
  return nullptr;
}

std::optional<size_t> Table::IndexOf(std::string_view name) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i].name() == name) return i;
  }
  return std::nullopt;
}

std::optional<size_t> Table::IndexOf(std::string_view name, size_t from) const {
  const size_t n = columns_.size();
  for (size_t k = 0; k < n; ++k) {
    const size_t i = from + k < n ? from + k : from + k - n;
    if (columns_[i].name() == name) return i;
  }
  return std::nullopt;
}

std::vector<std::string> Table::ColumnNames() const {
  std::vector<std::string> out;
  out.reserve(columns_.size());
  for (const Column& c : columns_) out.push_back(c.name());
  return out;
}

Column& Table::AddColumn(std::string name, ColumnType type) {
  FERRY_CHECK(Find(name) == nullptr);
  columns_.emplace_back(std::move(name), type);
  return columns_.back();
}

void Table::AddColumn(Column column) {
  FERRY_CHECK(Find(column.name()) == nullptr);
  columns_.push_back(std::move(column));
}

void Table::RemoveColumn(std::string_view name) {
  std::erase_if(columns_, [&](const Column& c) { return c.name() == name; });
}

Table Table::Filter(const std::vector<uint8_t>& keep) const {
  std::vector<size_t> rows;
  for (size_t i = 0; i < keep.size() && i < num_rows(); ++i) {
    if (keep[i]) rows.push_back(i);
  }
  return Take(rows);
}

Table Table::Take(const std::vector<size_t>& rows) const {
  Table out;
  for (const Column& c : columns_) {
    Column n(c.name(), c.type());
    n.Reserve(rows.size());
    for (size_t r : rows) n.AppendFrom(c, r);
    out.columns_.push_back(std::move(n));
  }
  return out;
}

bool Table::Consistent() const {
  for (const Column& c : columns_) {
    if (c.size() != num_rows()) return false;
  }
  return true;
}

namespace {

bool Digits(std::string_view s, size_t pos, size_t n, int* out) {
  if (pos + n > s.size()) return false;
  int v = 0;
  for (size_t i = pos; i < pos + n; ++i) {
    if (s[i] < '0' || s[i] > '9') return false;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return true;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
int64_t DaysFromCivil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

}  // namespace

std::optional<int64_t> ParseTimestamp(std::string_view s) {
  int y, mo, d, h = 0, mi = 0, sec = 0;
  if (s.size() < 10 || !Digits(s, 0, 4, &y) || s[4] != '-' || !Digits(s, 5, 2, &mo) ||
      s[7] != '-' || !Digits(s, 8, 2, &d) || mo < 1 || mo > 12 || d < 1 || d > 31) {
    return std::nullopt;
  }
  size_t i = 10;
  int64_t micros = 0;
  int64_t offset_s = 0;
  if (i < s.size() && (s[i] == 'T' || s[i] == ' ')) {
    if (!Digits(s, i + 1, 2, &h) || i + 3 >= s.size() || s[i + 3] != ':' ||
        !Digits(s, i + 4, 2, &mi)) {
      return std::nullopt;
    }
    i += 6;
    if (i < s.size() && s[i] == ':') {
      if (!Digits(s, i + 1, 2, &sec)) return std::nullopt;
      i += 3;
      if (i < s.size() && s[i] == '.') {
        ++i;
        int64_t scale = 100000;
        size_t start = i;
        while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
          micros += (s[i] - '0') * scale;
          scale /= 10;
          ++i;
        }
        if (i == start) return std::nullopt;
      }
    }
    if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
  }
  if (i < s.size()) {
    if (s[i] == 'Z' && i + 1 == s.size()) {
      ++i;
    } else if ((s[i] == '+' || s[i] == '-') && s.size() >= i + 6) {
      int oh, om;
      if (!Digits(s, i + 1, 2, &oh) || s[i + 3] != ':' || !Digits(s, i + 4, 2, &om)) {
        return std::nullopt;
      }
      offset_s = (oh * 3600 + om * 60) * (s[i] == '+' ? 1 : -1);
      i += 6;
    }
  }
  if (i != s.size()) return std::nullopt;
  int64_t days = DaysFromCivil(y, static_cast<unsigned>(mo), static_cast<unsigned>(d));
  return ((days * 86400 + h * 3600 + mi * 60 + sec) - offset_s) * 1000000 + micros;
}

std::string FormatTimestamp(int64_t micros) {
  int64_t secs = micros >= 0 ? micros / 1000000 : -((-micros + 999999) / 1000000);
  int64_t frac = micros - secs * 1000000;
  std::time_t t = static_cast<std::time_t>(secs);
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::string out = fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", tm.tm_year + 1900,
                                tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec);
  if (frac != 0) out += fmt::format(".{:06}", frac);
  out += "Z";
  return out;
}

}  // namespace ferry::data
