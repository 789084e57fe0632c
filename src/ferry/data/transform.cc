#include "ferry/data/transform.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <map>
#include <random>
#include <unordered_map>
#include <utility>

#include "fast_float/fast_float.h"
#include "ferry/common/status.h"
#include "ferry/common/suggest.h"
#include "fmt/format.h"

namespace ferry::data {

using nlohmann::json;

// The filter language is small (comparisons, and/or/not, parentheses): a hand-written
// recursive-descent parser, since no Debian-packaged expression library fits (we need exact error
// columns and our own null semantics).
struct FilterExpr {
  enum class Kind { kAnd, kOr, kNot, kCompare, kIsNull, kIsNotNull };
  enum class Literal { kNumber, kString, kBool };
  Kind kind = Kind::kCompare;
  std::vector<std::unique_ptr<FilterExpr>> children;  // and/or: 2, not: 1
  std::string column;
  size_t column_pos = 0;  // 1-based character column in the expression
  std::string op;         // ==, !=, <, <=, >, >=
  Literal literal = Literal::kNumber;
  double number = 0;
  std::optional<int64_t> integer;  // the number literal, when it is a whole number
  std::string text;
  bool boolean = false;
  size_t literal_pos = 0;
};

namespace {

const std::vector<std::string>& OpKinds() {
  static const auto* kinds =
      new std::vector<std::string>{"select", "drop",    "rename",      "cast",    "filter",
                                   "impute", "one_hot", "standardize", "min_max", "split"};
  return *kinds;
}
constexpr const char* kOther = "__other__";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Where(size_t index, std::string_view kind) {
  return fmt::format("ops[{}] ({})", index, kind);
}

// "; did you mean 'x'?" or the list of columns (capped, tables can be wide).
std::string ColumnHint(std::string_view name, const Table& t) {
  std::vector<std::string> names = t.ColumnNames();
  std::string suggestion = DidYouMean(name, names);
  if (!suggestion.empty()) return fmt::format("; did you mean '{}'?", suggestion);
  if (names.size() > 20) {
    names.resize(20);
    names.push_back("...");
  }
  return fmt::format("; the columns at this step are: {}", JoinNames(names));
}

// ---------------------------------------------------------------------------------------------
// Filter expressions.

struct Token {
  enum class Type { kIdent, kQuotedIdent, kNumber, kString, kOp, kLParen, kRParen, kEnd };
  Type type;
  std::string text;
  size_t pos;  // 1-based
};

std::string FilterError(std::string_view expr, size_t pos, std::string_view message) {
  return fmt::format("at column {} of \"{}\": {}", pos, expr, message);
}

bool ParseDouble(std::string_view s, double* out) {
  auto r = fast_float::from_chars(s.data(), s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size();
}

bool ParseInt(std::string_view s, int64_t* out) {
  const char* begin = s.data();
  if (!s.empty() && s[0] == '+') ++begin;
  auto r = std::from_chars(begin, s.data() + s.size(), *out);
  return r.ec == std::errc() && r.ptr == s.data() + s.size() && begin != s.data() + s.size();
}

absl::StatusOr<std::vector<Token>> Tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  const size_t n = s.size();
  auto is_digit = [&](size_t k) {
    return k < n && std::isdigit(static_cast<unsigned char>(s[k])) != 0;
  };
  while (i < n) {
    char c = s[i];
    size_t pos = i + 1;
    if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else if (c == '(' || c == ')') {
      out.push_back(
          {c == '(' ? Token::Type::kLParen : Token::Type::kRParen, std::string(1, c), pos});
      ++i;
    } else if (c == '\'' || c == '"') {
      // '' inside a string (or "" inside a quoted name) stands for one quote.
      std::string text;
      size_t j = i + 1;
      bool closed = false;
      while (j < n) {
        if (s[j] == c) {
          if (j + 1 < n && s[j + 1] == c) {
            text += c;
            j += 2;
            continue;
          }
          closed = true;
          ++j;
          break;
        }
        text += s[j++];
      }
      if (!closed) {
        return absl::InvalidArgumentError(
            FilterError(s, pos,
                        fmt::format("unterminated {}; close it with {}",
                                    c == '\'' ? "string literal" : "quoted column name", c)));
      }
      out.push_back({c == '\'' ? Token::Type::kString : Token::Type::kQuotedIdent, text, pos});
      i = j;
    } else if (is_digit(i) || ((c == '-' || c == '+' || c == '.') &&
                               (is_digit(i + 1) || (i + 1 < n && s[i + 1] == '.')))) {
      size_t j = i + 1;
      while (j < n && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '.' ||
                       ((s[j] == '+' || s[j] == '-') && (s[j - 1] == 'e' || s[j - 1] == 'E')))) {
        ++j;
      }
      std::string text(s.substr(i, j - i));
      double d;
      std::string_view digits = text[0] == '+' ? std::string_view(text).substr(1) : text;
      if (!ParseDouble(digits, &d)) {
        return absl::InvalidArgumentError(
            FilterError(s, pos, fmt::format("'{}' is not a number", text)));
      }
      out.push_back({Token::Type::kNumber, text, pos});
      i = j;
    } else if (std::isalpha(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i + 1;
      while (j < n &&
             (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '.')) {
        ++j;
      }
      out.push_back({Token::Type::kIdent, std::string(s.substr(i, j - i)), pos});
      i = j;
    } else if (c == '=' || c == '!' || c == '<' || c == '>') {
      std::string two(s.substr(i, std::min<size_t>(2, n - i)));
      if (two == "==" || two == "!=" || two == "<=" || two == ">=") {
        out.push_back({Token::Type::kOp, two, pos});
        i += 2;
      } else if (two == "<>") {
        return absl::InvalidArgumentError(FilterError(s, pos, "use '!=' for 'not equal'"));
      } else if (c == '<' || c == '>') {
        out.push_back({Token::Type::kOp, std::string(1, c), pos});
        ++i;
      } else {
        return absl::InvalidArgumentError(
            FilterError(s, pos, c == '=' ? "use '==' to compare for equality" : "expected '!='"));
      }
    } else {
      return absl::InvalidArgumentError(
          FilterError(s, pos, fmt::format("unexpected character '{}'", c)));
    }
  }
  out.push_back({Token::Type::kEnd, "", n + 1});
  return out;
}

class FilterParser {
 public:
  FilterParser(std::string_view expr, std::vector<Token> tokens)
      : expr_(expr), tokens_(std::move(tokens)) {}

  absl::StatusOr<std::unique_ptr<FilterExpr>> Parse() {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> e, ParseOr());
    if (Peek().type != Token::Type::kEnd) {
      return Error(Peek().pos, fmt::format("unexpected '{}'; expected 'and', 'or' or the end of "
                                           "the expression",
                                           Peek().text));
    }
    return e;
  }

 private:
  const Token& Peek() const { return tokens_[next_]; }
  bool IsKeyword(const Token& t, std::string_view word) const {
    return t.type == Token::Type::kIdent && Lower(t.text) == word;
  }
  static bool IsReserved(const Token& t) {
    static const std::set<std::string> kWords = {"and", "or", "not", "is", "null", "true", "false"};
    return t.type == Token::Type::kIdent && kWords.count(Lower(t.text)) > 0;
  }
  absl::Status Error(size_t pos, std::string_view message) const {
    return absl::InvalidArgumentError(FilterError(expr_, pos, message));
  }
  std::string Describe(const Token& t) const {
    return t.type == Token::Type::kEnd ? "the end of the expression" : fmt::format("'{}'", t.text);
  }

  absl::StatusOr<std::unique_ptr<FilterExpr>> Binary(
      FilterExpr::Kind kind, std::string_view word,
      absl::StatusOr<std::unique_ptr<FilterExpr>> (FilterParser::*operand)()) {
    FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> left, (this->*operand)());
    while (IsKeyword(Peek(), word)) {
      ++next_;
      FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> right, (this->*operand)());
      auto e = std::make_unique<FilterExpr>();
      e->kind = kind;
      e->children.push_back(std::move(left));
      e->children.push_back(std::move(right));
      left = std::move(e);
    }
    return left;
  }
  absl::StatusOr<std::unique_ptr<FilterExpr>> ParseOr() {
    return Binary(FilterExpr::Kind::kOr, "or", &FilterParser::ParseAnd);
  }
  absl::StatusOr<std::unique_ptr<FilterExpr>> ParseAnd() {
    return Binary(FilterExpr::Kind::kAnd, "and", &FilterParser::ParseUnary);
  }
  absl::StatusOr<std::unique_ptr<FilterExpr>> ParseUnary() {
    if (IsKeyword(Peek(), "not")) {
      ++next_;
      FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> child, ParseUnary());
      auto e = std::make_unique<FilterExpr>();
      e->kind = FilterExpr::Kind::kNot;
      e->children.push_back(std::move(child));
      return e;
    }
    return ParsePrimary();
  }
  absl::StatusOr<std::unique_ptr<FilterExpr>> ParsePrimary() {
    const Token& t = Peek();
    if (t.type == Token::Type::kLParen) {
      ++next_;
      FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> e, ParseOr());
      if (Peek().type != Token::Type::kRParen) {
        return Error(Peek().pos, fmt::format("expected ')' to close the '(' at column {}, got {}",
                                             t.pos, Describe(Peek())));
      }
      ++next_;
      return e;
    }
    if (!(t.type == Token::Type::kQuotedIdent ||
          (t.type == Token::Type::kIdent && !IsReserved(t)))) {
      return Error(t.pos, fmt::format("expected a column name, 'not' or '(', got {}{}", Describe(t),
                                      IsReserved(t) ? " (quote a column named like a keyword: "
                                                      "\"name\")"
                                                    : ""));
    }
    auto e = std::make_unique<FilterExpr>();
    e->column = t.text;
    e->column_pos = t.pos;
    ++next_;
    const Token& op = Peek();
    if (IsKeyword(op, "is")) {
      ++next_;
      e->kind = FilterExpr::Kind::kIsNull;
      if (IsKeyword(Peek(), "not")) {
        ++next_;
        e->kind = FilterExpr::Kind::kIsNotNull;
      }
      if (!IsKeyword(Peek(), "null")) {
        return Error(Peek().pos,
                     fmt::format("expected 'null' after 'is', got {}", Describe(Peek())));
      }
      ++next_;
      return e;
    }
    if (op.type != Token::Type::kOp) {
      return Error(op.pos, fmt::format("expected a comparison operator (==, !=, <, <=, >, >=) or "
                                       "'is null' after '{}', got {}",
                                       e->column, Describe(op)));
    }
    e->op = op.text;
    ++next_;
    const Token& lit = Peek();
    e->literal_pos = lit.pos;
    if (lit.type == Token::Type::kNumber) {
      e->literal = FilterExpr::Literal::kNumber;
      std::string_view digits =
          lit.text[0] == '+' ? std::string_view(lit.text).substr(1) : std::string_view(lit.text);
      ParseDouble(digits, &e->number);
      int64_t i;
      if (ParseInt(lit.text, &i)) e->integer = i;
    } else if (lit.type == Token::Type::kString) {
      e->literal = FilterExpr::Literal::kString;
      e->text = lit.text;
    } else if (IsKeyword(lit, "true") || IsKeyword(lit, "false")) {
      e->literal = FilterExpr::Literal::kBool;
      e->boolean = IsKeyword(lit, "true");
    } else {
      return Error(lit.pos, fmt::format("expected a number, a 'quoted string', true or false after "
                                        "'{}', got {}",
                                        e->op, Describe(lit)));
    }
    ++next_;
    return e;
  }

  std::string_view expr_;
  std::vector<Token> tokens_;
  size_t next_ = 0;
};

absl::StatusOr<std::shared_ptr<const FilterExpr>> ParseFilter(std::string_view expr) {
  FERRY_ASSIGN_OR_RETURN(std::vector<Token> tokens, Tokenize(expr));
  if (tokens.size() == 1) {
    return absl::InvalidArgumentError(
        FilterError(expr, 1, "empty expression; write a condition such as \"tenure >= 0\""));
  }
  FilterParser parser(expr, std::move(tokens));
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<FilterExpr> e, parser.Parse());
  return std::shared_ptr<const FilterExpr>(std::move(e));
}

template <typename T>
bool Compare(std::string_view op, const T& a, const T& b) {
  if (op == "==") return a == b;
  if (op == "!=") return a != b;
  if (op == "<") return a < b;
  if (op == "<=") return a <= b;
  if (op == ">") return a > b;
  return a >= b;
}

// Two-valued logic: a comparison involving a null is false, and `not` negates that.
absl::StatusOr<std::vector<uint8_t>> EvalFilter(const FilterExpr& e, const Table& t,
                                                std::string_view expr) {
  const size_t n = t.num_rows();
  std::vector<uint8_t> out(n, 0);
  switch (e.kind) {
    case FilterExpr::Kind::kAnd:
    case FilterExpr::Kind::kOr: {
      FERRY_ASSIGN_OR_RETURN(std::vector<uint8_t> a, EvalFilter(*e.children[0], t, expr));
      FERRY_ASSIGN_OR_RETURN(std::vector<uint8_t> b, EvalFilter(*e.children[1], t, expr));
      for (size_t r = 0; r < n; ++r) {
        out[r] = e.kind == FilterExpr::Kind::kAnd ? (a[r] && b[r]) : (a[r] || b[r]);
      }
      return out;
    }
    case FilterExpr::Kind::kNot: {
      FERRY_ASSIGN_OR_RETURN(std::vector<uint8_t> a, EvalFilter(*e.children[0], t, expr));
      for (size_t r = 0; r < n; ++r) out[r] = !a[r];
      return out;
    }
    default:
      break;
  }
  const Column* c = t.Find(e.column);
  if (c == nullptr) {
    return absl::InvalidArgumentError(FilterError(
        expr, e.column_pos, fmt::format("no column '{}'{}", e.column, ColumnHint(e.column, t))));
  }
  if (e.kind == FilterExpr::Kind::kIsNull || e.kind == FilterExpr::Kind::kIsNotNull) {
    bool want_null = e.kind == FilterExpr::Kind::kIsNull;
    for (size_t r = 0; r < n; ++r) out[r] = c->is_null(r) == want_null;
    return out;
  }
  auto mismatch = [&](std::string_view hint) {
    return absl::InvalidArgumentError(FilterError(
        expr, e.literal_pos,
        fmt::format("column '{}' is {}: compare it with {}", e.column, TypeName(c->type()), hint)));
  };
  switch (c->type()) {
    case ColumnType::kString: {
      if (e.literal != FilterExpr::Literal::kString) return mismatch("a 'quoted string'");
      for (size_t r = 0; r < n; ++r) {
        if (!c->is_null(r)) out[r] = Compare<std::string_view>(e.op, c->string_at(r), e.text);
      }
      return out;
    }
    case ColumnType::kFloat64:
    case ColumnType::kInt64: {
      if (e.literal != FilterExpr::Literal::kNumber) return mismatch("a number");
      const bool exact = c->type() == ColumnType::kInt64 && e.integer.has_value();
      for (size_t r = 0; r < n; ++r) {
        if (c->is_null(r)) continue;
        out[r] = exact ? Compare(e.op, c->int_at(r), *e.integer)
                       : Compare(e.op, c->AsDouble(r), e.number);
      }
      return out;
    }
    case ColumnType::kBool: {
      int64_t v;
      if (e.literal == FilterExpr::Literal::kBool) {
        v = e.boolean ? 1 : 0;
      } else if (e.literal == FilterExpr::Literal::kNumber && e.integer.has_value() &&
                 (*e.integer == 0 || *e.integer == 1)) {
        v = *e.integer;
      } else {
        return mismatch("true or false");
      }
      for (size_t r = 0; r < n; ++r) {
        if (!c->is_null(r)) out[r] = Compare(e.op, c->int_at(r), v);
      }
      return out;
    }
    case ColumnType::kTimestamp: {
      std::optional<int64_t> v;
      if (e.literal == FilterExpr::Literal::kString) v = ParseTimestamp(e.text);
      if (!v.has_value()) return mismatch("a 'quoted timestamp' such as '2026-11-27T10:00:00Z'");
      for (size_t r = 0; r < n; ++r) {
        if (!c->is_null(r)) out[r] = Compare(e.op, c->int_at(r), *v);
      }
      return out;
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Casts.

// The column converted to `to`; errors name the 1-based row and say what to do.
absl::StatusOr<Column> CastColumn(const Column& c, ColumnType to) {
  if (c.type() == to) return c;
  const ColumnType from = c.type();
  if ((from == ColumnType::kBool && to == ColumnType::kTimestamp) ||
      (from == ColumnType::kTimestamp && to == ColumnType::kBool)) {
    return absl::InvalidArgumentError(
        fmt::format("cannot cast {} to {}", TypeName(from), TypeName(to)));
  }
  Column out(c.name(), to);
  out.Reserve(c.size());
  auto bad = [&](size_t r, std::string_view why) {
    return absl::InvalidArgumentError(
        fmt::format("row {}: '{}' {}; fix the data, or filter or impute the rows first", r + 1,
                    c.ToText(r), why));
  };
  for (size_t r = 0; r < c.size(); ++r) {
    if (c.is_null(r)) {
      out.AppendNull();
      continue;
    }
    if (to == ColumnType::kString) {
      out.AppendString(c.ToText(r));
      continue;
    }
    if (from == ColumnType::kString) {
      std::string_view s = c.string_at(r);
      if (s.empty()) {
        out.AppendNull();
        continue;
      }
      switch (to) {
        case ColumnType::kInt64: {
          int64_t v;
          if (!ParseInt(s, &v)) return bad(r, "is not an int64");
          out.AppendInt(v);
          break;
        }
        case ColumnType::kFloat64: {
          double v;
          if (!ParseDouble(s, &v)) return bad(r, "is not a float64");
          out.AppendDouble(v);
          break;
        }
        case ColumnType::kBool: {
          std::string l = Lower(s);
          if (l == "true" || l == "1" || l == "yes") {
            out.AppendBool(true);
          } else if (l == "false" || l == "0" || l == "no") {
            out.AppendBool(false);
          } else {
            return bad(r, "is not a bool (true/false, 1/0, yes/no)");
          }
          break;
        }
        case ColumnType::kTimestamp: {
          std::optional<int64_t> v = ParseTimestamp(s);
          if (!v.has_value()) return bad(r, "is not a timestamp (YYYY-MM-DD[THH:MM:SS][Z])");
          out.AppendInt(*v);
          break;
        }
        case ColumnType::kString:
          break;
      }
      continue;
    }
    // Numeric to numeric.
    if (from == ColumnType::kFloat64) {
      double d = c.float_at(r);
      if (to == ColumnType::kFloat64) {
        out.AppendDouble(d);
      } else if (to == ColumnType::kBool) {
        if (d != 0.0 && d != 1.0) return bad(r, "is not a bool (0 or 1)");
        out.AppendBool(d == 1.0);
      } else {
        if (!std::isfinite(d) || d != std::trunc(d) || std::fabs(d) >= 9.2e18) {
          return bad(r, fmt::format("is not a whole number, so it cannot become {}", TypeName(to)));
        }
        out.AppendInt(static_cast<int64_t>(d));
      }
    } else {
      int64_t v = c.int_at(r);
      if (to == ColumnType::kFloat64) {
        out.AppendDouble(static_cast<double>(v));
      } else if (to == ColumnType::kBool && v != 0 && v != 1) {
        return bad(r, "is not a bool (0 or 1)");
      } else {
        out.AppendInt(v);
      }
    }
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// ParseOps.

absl::StatusOr<std::vector<std::string>> NameList(const json& v) {
  std::vector<std::string> out;
  if (v.is_string()) {
    out.push_back(v.get<std::string>());
  } else if (v.is_array()) {
    for (const json& e : v) {
      if (!e.is_string()) {
        return absl::InvalidArgumentError(
            fmt::format("expected column names, got {}; write a list like [a, b]", e.dump()));
      }
      out.push_back(e.get<std::string>());
    }
  } else {
    return absl::InvalidArgumentError(
        fmt::format("expected a list of column names like [a, b], got {}", v.dump()));
  }
  if (out.empty()) return absl::InvalidArgumentError("the column list is empty; name at least one");
  std::set<std::string> seen;
  for (const std::string& s : out) {
    if (s.empty()) return absl::InvalidArgumentError("a column name is empty");
    if (!seen.insert(s).second) {
      return absl::InvalidArgumentError(fmt::format("column '{}' is listed twice", s));
    }
  }
  return out;
}

absl::Status NeedObject(const json& v, std::string_view example) {
  if (!v.is_object() || v.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("expected a non-empty mapping like {}, got {}", example, v.dump()));
  }
  return absl::OkStatus();
}

absl::Status ParseArgs(TransformOp& op) {
  const json& a = op.args;
  const std::string& k = op.kind;
  if (k == "select" || k == "drop" || k == "standardize" || k == "min_max") {
    FERRY_ASSIGN_OR_RETURN(std::vector<std::string> names, NameList(a));
    for (std::string& n : names) op.columns.push_back({.name = std::move(n)});
    return absl::OkStatus();
  }
  if (k == "rename") {
    FERRY_RETURN_IF_ERROR(NeedObject(a, "{charges: monthly_charges}"));
    std::set<std::string> targets;
    for (const auto& [from, to] : a.items()) {
      if (!to.is_string() || to.get<std::string>().empty()) {
        return absl::InvalidArgumentError(fmt::format(
            "the new name of '{}' must be a non-empty string, got {}", from, to.dump()));
      }
      if (!targets.insert(to.get<std::string>()).second) {
        return absl::InvalidArgumentError(
            fmt::format("two columns are renamed to '{}'", to.get<std::string>()));
      }
      op.columns.push_back({.name = from, .rename_to = to.get<std::string>()});
    }
    return absl::OkStatus();
  }
  if (k == "cast") {
    FERRY_RETURN_IF_ERROR(NeedObject(a, "{tenure: float64}"));
    for (const auto& [col, type] : a.items()) {
      if (!type.is_string()) {
        return absl::InvalidArgumentError(fmt::format(
            "column '{}': expected a type name (int64, float64, string, bool, timestamp), got {}",
            col, type.dump()));
      }
      absl::StatusOr<ColumnType> t = ParseTypeName(type.get<std::string>());
      if (!t.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("column '{}': {}", col, t.status().message()));
      }
      op.columns.push_back({.name = col, .cast_to = *t});
    }
    return absl::OkStatus();
  }
  if (k == "filter") {
    if (!a.is_string()) {
      return absl::InvalidArgumentError(fmt::format(
          "expected an expression string like \"tenure >= 0 and plan != 'trial'\", got {}",
          a.dump()));
    }
    op.expression = a.get<std::string>();
    FERRY_ASSIGN_OR_RETURN(op.filter, ParseFilter(op.expression));
    return absl::OkStatus();
  }
  if (k == "impute") {
    FERRY_RETURN_IF_ERROR(NeedObject(a, "{tenure: median, region: {constant: unknown}}"));
    static const std::vector<std::string> kStrategies = {"mean", "median", "mode", "constant"};
    for (const auto& [col, s] : a.items()) {
      TransformColumn tc{.name = col};
      if (s.is_string()) {
        tc.strategy = s.get<std::string>();
        if (tc.strategy == "constant") {
          return absl::InvalidArgumentError(fmt::format(
              "column '{}': give the constant's value, as in {{{}: {{constant: 0}}}}", col, col));
        }
        if (std::find(kStrategies.begin(), kStrategies.end(), tc.strategy) == kStrategies.end()) {
          return absl::InvalidArgumentError(fmt::format("column '{}': unknown strategy '{}'{}", col,
                                                        tc.strategy,
                                                        UnknownKeyHint(tc.strategy, kStrategies)));
        }
      } else if (s.is_object() && s.size() == 1 && s.contains("constant")) {
        tc.strategy = "constant";
        tc.constant = s["constant"];
        if (!tc.constant.is_primitive() || tc.constant.is_null()) {
          return absl::InvalidArgumentError(
              fmt::format("column '{}': the constant must be a number, a string or a bool, got {}",
                          col, tc.constant.dump()));
        }
      } else {
        return absl::InvalidArgumentError(
            fmt::format("column '{}': expected mean, median, mode or {{constant: value}}, got {}",
                        col, s.dump()));
      }
      op.columns.push_back(std::move(tc));
    }
    return absl::OkStatus();
  }
  if (k == "one_hot") {
    if (a.is_array() || a.is_string()) {
      FERRY_ASSIGN_OR_RETURN(std::vector<std::string> names, NameList(a));
      for (std::string& n : names) op.columns.push_back({.name = std::move(n)});
      return absl::OkStatus();
    }
    FERRY_RETURN_IF_ERROR(NeedObject(a, "[plan] or {plan: {max_categories: 20}}"));
    for (const auto& [col, s] : a.items()) {
      TransformColumn tc{.name = col};
      if (s.is_object()) {
        for (const auto& [key, v] : s.items()) {
          if (key != "max_categories") {
            return absl::InvalidArgumentError(fmt::format("column '{}': unknown setting '{}'{}",
                                                          col, key,
                                                          UnknownKeyHint(key, {"max_categories"})));
          }
          if (!v.is_number_integer() || v.get<int64_t>() < 1) {
            return absl::InvalidArgumentError(fmt::format(
                "column '{}': max_categories must be a whole number >= 1, got {}", col, v.dump()));
          }
          tc.max_categories = v.get<int64_t>();
        }
      } else if (!s.is_null()) {
        return absl::InvalidArgumentError(fmt::format(
            "column '{}': expected {{max_categories: N}} or nothing, got {}", col, s.dump()));
      }
      op.columns.push_back(std::move(tc));
    }
    return absl::OkStatus();
  }
  if (k == "split") {
    FERRY_RETURN_IF_ERROR(NeedObject(a, "{test: 0.2, seed: 7, stratify: churned}"));
    static const std::vector<std::string> kKeys = {"test", "seed", "stratify"};
    for (const auto& [key, v] : a.items()) {
      if (std::find(kKeys.begin(), kKeys.end(), key) == kKeys.end()) {
        return absl::InvalidArgumentError(
            fmt::format("unknown setting '{}'{}", key, UnknownKeyHint(key, kKeys)));
      }
    }
    if (!a.contains("test") || !a["test"].is_number()) {
      return absl::InvalidArgumentError(
          "'test' must be the fraction of rows for the test part, e.g. {test: 0.2}");
    }
    op.test_fraction = a["test"].get<double>();
    if (!(op.test_fraction > 0 && op.test_fraction < 1)) {
      return absl::InvalidArgumentError(fmt::format(
          "test fraction {} is not between 0 and 1 (exclusive); write a fraction such as 0.2{}",
          a["test"].dump(), op.test_fraction >= 1 ? ", not a percentage" : ""));
    }
    if (a.contains("seed")) {
      const json& s = a["seed"];
      if (!s.is_number_integer() ||
          (s.is_number_integer() && !s.is_number_unsigned() && s.get<int64_t>() < 0)) {
        return absl::InvalidArgumentError(
            fmt::format("seed must be a whole number >= 0, got {}", s.dump()));
      }
      op.seed = s.get<uint64_t>();
    }
    if (a.contains("stratify")) {
      if (!a["stratify"].is_string() || a["stratify"].get<std::string>().empty()) {
        return absl::InvalidArgumentError(
            fmt::format("stratify must be a column name, got {}", a["stratify"].dump()));
      }
      op.stratify = a["stratify"].get<std::string>();
    }
    return absl::OkStatus();
  }
  return absl::InternalError(fmt::format("unhandled op kind '{}'", k));
}

// ---------------------------------------------------------------------------------------------
// Fitting and applying. Fitting an op computes its state entry from the rows it sees; applying
// runs the entry. FitTransform applies the very entries it stores, so training and serving share
// one code path (train/serve parity by construction).

enum class Absence { kOptional, kRequired, kReported };

struct Ctx {
  size_t index = 0;
  std::string kind;
  std::string part;  // "" or " on the test part"
  bool serving = false;
  // Serving only: columns absent from the input, by current name.
  std::map<std::string, Absence> absent;
  const std::set<std::string>* optional = nullptr;
  std::vector<std::string> missing;
  // Fitting only: the input row index of each row of the table an op is applied to; a filter
  // keeps the entries of the rows it keeps. nullptr when not tracked (serving).
  std::vector<size_t>* input_rows = nullptr;

  std::string Where() const { return fmt::format("ops[{}] ({}){}", index, kind, part); }
  bool IsOptional(const std::string& name) const {
    return optional != nullptr && optional->count(name) > 0;
  }
};

// The column `name` the current op needs; nullptr when it is absent at serving time (an
// optional column is skipped; a required one is recorded in ctx.missing).
absl::StatusOr<Column*> Lookup(Table& t, const std::string& name, Ctx& ctx) {
  if (Column* c = t.FindMutable(name)) return c;
  if (auto it = ctx.absent.find(name); it != ctx.absent.end()) {
    if (it->second == Absence::kRequired && !ctx.IsOptional(name)) {
      ctx.missing.push_back(fmt::format("'{}' (needed by {})", name, ctx.Where()));
      it->second = Absence::kReported;
    }
    return nullptr;
  }
  return absl::InvalidArgumentError(
      fmt::format("{}: no column '{}'{}", ctx.Where(), name, ColumnHint(name, t)));
}

absl::Status ColumnError(const Ctx& ctx, std::string_view column, std::string_view message) {
  return absl::InvalidArgumentError(
      fmt::format("{}: column '{}': {}", ctx.Where(), column, message));
}

// Non-null, non-NaN values as doubles.
std::vector<double> NumericValues(const Column& c) {
  std::vector<double> out;
  out.reserve(c.size());
  for (size_t r = 0; r < c.size(); ++r) {
    if (c.is_null(r)) continue;
    double d = c.AsDouble(r);
    if (!std::isnan(d)) out.push_back(d);
  }
  return out;
}

double Mean(const std::vector<double>& v) {
  double sum = 0;
  for (double d : v) sum += d;
  return sum / static_cast<double>(v.size());
}

// A fitted statistic must be finite: JSON has no inf, and it would poison every row it touches.
absl::Status CheckFinite(const Ctx& ctx, std::string_view column, std::string_view what,
                         double value) {
  if (std::isfinite(value)) return absl::OkStatus();
  return ColumnError(ctx, column,
                     fmt::format("the {} is {} (the column has infinite or huge values); filter "
                                 "those rows out first",
                                 what, value));
}

// A typed JSON value for column type `type` (timestamps as ISO 8601 text).
json ValueJson(ColumnType type, double d) {
  if (type == ColumnType::kTimestamp) return FormatTimestamp(std::llround(d));
  return d;
}

absl::StatusOr<json> ImputeValue(const TransformColumn& tc, const Column& c, const Ctx& ctx) {
  const ColumnType type = c.type();
  if (tc.strategy == "mean" || tc.strategy == "median") {
    if (type != ColumnType::kInt64 && type != ColumnType::kFloat64 &&
        type != ColumnType::kTimestamp) {
      return ColumnError(ctx, tc.name,
                         fmt::format("{} needs a numeric column (int64, float64 or timestamp) but "
                                     "it is {}; use mode or {{constant: ...}}",
                                     tc.strategy, TypeName(type)));
    }
    std::vector<double> v = NumericValues(c);
    if (v.empty()) {
      return ColumnError(ctx, tc.name,
                         fmt::format("no non-null values to compute the {} from; use "
                                     "{{constant: ...}}",
                                     tc.strategy));
    }
    double value;
    if (tc.strategy == "mean") {
      value = Mean(v);
    } else {
      std::sort(v.begin(), v.end());
      size_t m = v.size() / 2;
      value = v.size() % 2 == 1 ? v[m] : (v[m - 1] + v[m]) / 2;
    }
    FERRY_RETURN_IF_ERROR(CheckFinite(ctx, tc.name, tc.strategy, value));
    return ValueJson(type, value);
  }
  if (tc.strategy == "mode") {
    if (c.null_count() == c.size()) {
      return ColumnError(ctx, tc.name,
                         "no non-null values to compute the mode from; use "
                         "{constant: ...}");
    }
    // Ties go to the smallest value: maps iterate in increasing order and only a strictly
    // larger count replaces the best.
    if (type == ColumnType::kString) {
      std::vector<size_t> counts(c.dictionary().size(), 0);
      for (size_t r = 0; r < c.size(); ++r) {
        if (!c.is_null(r)) ++counts[static_cast<size_t>(c.code_at(r))];
      }
      std::map<std::string_view, size_t> by_value;
      for (size_t i = 0; i < counts.size(); ++i) {
        if (counts[i] > 0) by_value[c.dictionary()[i]] = counts[i];
      }
      std::string_view best;
      size_t best_count = 0;
      for (const auto& [value, count] : by_value) {
        if (count > best_count) best = value, best_count = count;
      }
      return std::string(best);
    }
    if (type == ColumnType::kFloat64) {
      std::map<double, size_t> counts;
      for (double d : NumericValues(c)) ++counts[d];
      if (counts.empty()) return ColumnError(ctx, tc.name, "only NaN values; use {constant: ...}");
      double best = 0;
      size_t best_count = 0;
      for (const auto& [value, count] : counts) {
        if (count > best_count) best = value, best_count = count;
      }
      return best;
    }
    std::map<int64_t, size_t> counts;
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.is_null(r)) ++counts[c.int_at(r)];
    }
    int64_t best = 0;
    size_t best_count = 0;
    for (const auto& [value, count] : counts) {
      if (count > best_count) best = value, best_count = count;
    }
    if (type == ColumnType::kBool) return best != 0;
    if (type == ColumnType::kTimestamp) return FormatTimestamp(best);
    return best;
  }
  // constant: checked against the column's type now that it is known.
  const json& v = tc.constant;
  auto wrong = [&](std::string_view want) {
    return ColumnError(ctx, tc.name,
                       fmt::format("the constant {} does not fit its type {}; give {}", v.dump(),
                                   TypeName(type), want));
  };
  switch (type) {
    case ColumnType::kString:
      return v.is_string() ? v : json(v.dump());  // {constant: 0} means "0" here
    case ColumnType::kFloat64:
      if (!v.is_number()) return wrong("a number");
      return v.get<double>();
    case ColumnType::kInt64:
      if (v.is_number_integer()) return v.get<int64_t>();
      if (v.is_number_float() && v.get<double>() == std::trunc(v.get<double>())) {
        return static_cast<int64_t>(v.get<double>());
      }
      return wrong("a whole number");
    case ColumnType::kBool:
      if (!v.is_boolean()) return wrong("true or false");
      return v;
    case ColumnType::kTimestamp: {
      std::optional<int64_t> ts;
      if (v.is_string()) ts = ParseTimestamp(v.get<std::string>());
      if (!ts.has_value()) return wrong("a timestamp such as '2026-11-27T00:00:00Z'");
      return FormatTimestamp(*ts);
    }
  }
  return wrong("a value");
}

absl::StatusOr<json> OneHotCategories(const TransformColumn& tc, const Column& c, const Ctx& ctx) {
  const ColumnType type = c.type();
  if (type != ColumnType::kString && type != ColumnType::kInt64 && type != ColumnType::kBool) {
    return ColumnError(ctx, tc.name,
                       fmt::format("one_hot needs a categorical column (string, int64 or bool) "
                                   "but it is {}; cast it to string first",
                                   TypeName(type)));
  }
  // (text, count) in natural order: byte order for strings, numeric for int64/bool.
  std::vector<std::pair<std::string, size_t>> cats;
  if (type == ColumnType::kString) {
    std::vector<size_t> counts(c.dictionary().size(), 0);
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.is_null(r)) ++counts[static_cast<size_t>(c.code_at(r))];
    }
    for (size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] > 0) cats.emplace_back(c.dictionary()[i], counts[i]);
    }
    std::sort(cats.begin(), cats.end());
  } else {
    std::map<int64_t, size_t> counts;
    for (size_t r = 0; r < c.size(); ++r) {
      if (!c.is_null(r)) ++counts[c.int_at(r)];
    }
    for (const auto& [v, count] : counts) {
      cats.emplace_back(
          type == ColumnType::kBool ? (v != 0 ? "true" : "false") : fmt::format("{}", v), count);
    }
  }
  if (cats.empty()) {
    return ColumnError(ctx, tc.name, "no non-null values, so no categories to encode");
  }
  bool other = false;
  if (tc.max_categories > 0 && cats.size() > static_cast<size_t>(tc.max_categories)) {
    other = true;
    std::vector<size_t> order(cats.size());
    for (size_t i = 0; i < order.size(); ++i) order[i] = i;
    // Most frequent first; equal counts keep the natural order (smallest first).
    std::stable_sort(order.begin(), order.end(),
                     [&](size_t a, size_t b) { return cats[a].second > cats[b].second; });
    order.resize(static_cast<size_t>(tc.max_categories));
    std::sort(order.begin(), order.end());
    std::vector<std::pair<std::string, size_t>> kept;
    for (size_t i : order) kept.push_back(cats[i]);
    cats = std::move(kept);
  }
  json names = json::array();
  for (const auto& [text, count] : cats) names.push_back(text);
  return json{{"categories", names}, {"other", other}};
}

absl::StatusOr<json> Moments(const std::string& name, const Column& c, const Ctx& ctx,
                             bool min_max) {
  if (c.type() != ColumnType::kInt64 && c.type() != ColumnType::kFloat64 &&
      c.type() != ColumnType::kBool) {
    return ColumnError(ctx, name,
                       fmt::format("{} needs a numeric column (int64, float64 or bool) but it is "
                                   "{}{}",
                                   ctx.kind, TypeName(c.type()),
                                   c.type() == ColumnType::kString ? "; one_hot it instead"
                                                                   : "; cast it to float64 first"));
  }
  std::vector<double> v = NumericValues(c);
  if (v.empty()) {
    return ColumnError(ctx, name, "no non-null values to fit on; impute or drop it");
  }
  if (min_max) {
    auto [lo, hi] = std::minmax_element(v.begin(), v.end());
    FERRY_RETURN_IF_ERROR(CheckFinite(ctx, name, "range", *hi - *lo));
    return json{{"min", *lo}, {"max", *hi}};
  }
  double mean = Mean(v);
  double ss = 0;
  for (double d : v) ss += (d - mean) * (d - mean);
  const double std = std::sqrt(ss / static_cast<double>(v.size()));
  FERRY_RETURN_IF_ERROR(CheckFinite(ctx, name, "mean", mean));
  FERRY_RETURN_IF_ERROR(CheckFinite(ctx, name, "std", std));
  return json{{"mean", mean}, {"std", std}};
}

// The state entry of a (non-split) op fitted on `t`.
absl::StatusOr<json> FitEntry(const TransformOp& op, Table& t, Ctx& ctx) {
  const std::string& k = op.kind;
  if (k == "select" || k == "drop") {
    json names = json::array();
    for (const TransformColumn& tc : op.columns) names.push_back(tc.name);
    return json{{k, names}};
  }
  if (k == "filter") return json{{k, op.expression}};
  json params = json::object();
  for (const TransformColumn& tc : op.columns) {
    if (k == "rename") {
      params[tc.name] = tc.rename_to;
      continue;
    }
    if (k == "cast") {
      params[tc.name] = std::string(TypeName(tc.cast_to));
      continue;
    }
    FERRY_ASSIGN_OR_RETURN(Column * c, Lookup(t, tc.name, ctx));
    if (k == "impute") {
      FERRY_ASSIGN_OR_RETURN(json value, ImputeValue(tc, *c, ctx));
      params[tc.name] = {{"strategy", tc.strategy}, {"value", value}};
    } else if (k == "one_hot") {
      FERRY_ASSIGN_OR_RETURN(params[tc.name], OneHotCategories(tc, *c, ctx));
    } else if (k == "standardize" || k == "min_max") {
      FERRY_ASSIGN_OR_RETURN(params[tc.name], Moments(tc.name, *c, ctx, k == "min_max"));
    } else {
      return absl::InternalError(fmt::format("{}: cannot fit op kind '{}'", ctx.Where(), k));
    }
  }
  return json{{k, params}};
}

void ReplaceColumn(Column* old, Column replacement) {
  replacement.set_name(old->name());
  *old = std::move(replacement);
}

absl::Status ApplySelect(const json& names, Table& t, Ctx& ctx) {
  std::vector<size_t> indices;
  std::map<std::string, Absence> absent;
  for (const json& n : names) {
    std::string name = n.get<std::string>();
    FERRY_ASSIGN_OR_RETURN(Column * c, Lookup(t, name, ctx));
    if (c == nullptr) {
      absent[name] = ctx.absent[name];
      continue;
    }
    indices.push_back(static_cast<size_t>(c - t.mutable_columns().data()));
  }
  Table out;
  for (size_t i : indices) out.AddColumn(std::move(t.mutable_column(i)));
  t = std::move(out);
  ctx.absent = std::move(absent);  // unselected absent columns are no longer needed
  return absl::OkStatus();
}

absl::Status ApplyDrop(const json& names, Table& t, Ctx& ctx) {
  for (const json& n : names) {
    std::string name = n.get<std::string>();
    if (t.Find(name) != nullptr) {
      t.RemoveColumn(name);
    } else if (ctx.absent.erase(name) == 0 && !ctx.serving) {
      return absl::InvalidArgumentError(
          fmt::format("{}: no column '{}'{}", ctx.Where(), name, ColumnHint(name, t)));
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyRename(const json& params, Table& t, Ctx& ctx) {
  // Simultaneous: resolve every source first, then check that the final names are unique.
  std::vector<std::pair<Column*, std::string>> present;
  std::map<std::string, Absence> moved;
  for (const auto& [from, to] : params.items()) {
    FERRY_ASSIGN_OR_RETURN(Column * c, Lookup(t, from, ctx));
    if (c == nullptr) {
      moved[to.get<std::string>()] = ctx.absent[from];
      ctx.absent.erase(from);
    } else {
      present.emplace_back(c, to.get<std::string>());
    }
  }
  std::map<const Column*, std::string> final_names;
  for (const Column& c : t.columns()) final_names[&c] = c.name();
  for (const auto& [c, to] : present) final_names[c] = to;
  std::map<std::string, std::string> seen;  // final name -> original name
  for (const auto& [c, name] : final_names) {
    auto [it, inserted] = seen.emplace(name, c->name());
    if (!inserted) {
      const std::string& a = it->second == name ? c->name() : it->second;
      const std::string& b = it->second == name ? it->second : c->name();
      return absl::InvalidArgumentError(fmt::format(
          "{}: renaming '{}' to '{}' clashes with the column '{}' already named so; drop or rename "
          "that one too",
          ctx.Where(), a, name, b));
    }
  }
  for (auto& [c, to] : present) c->set_name(to);
  for (auto& [name, a] : moved) ctx.absent[name] = a;
  return absl::OkStatus();
}

absl::Status Fill(Column& c, const json& value) {
  for (size_t r = 0; r < c.size(); ++r) {
    if (!c.is_null(r)) continue;
    c.mutable_valid()[r] = 1;
    switch (c.type()) {
      case ColumnType::kFloat64:
        c.mutable_doubles()[r] = value.get<double>();
        break;
      case ColumnType::kString:
        c.mutable_codes()[r] = c.Intern(value.get<std::string>());
        break;
      case ColumnType::kInt64:
        c.mutable_ints()[r] = value.get<int64_t>();
        break;
      case ColumnType::kBool:
        c.mutable_ints()[r] = value.get<bool>() ? 1 : 0;
        break;
      case ColumnType::kTimestamp: {
        std::optional<int64_t> ts = ParseTimestamp(value.get<std::string>());
        if (!ts.has_value()) {
          return absl::InvalidArgumentError(
              fmt::format("'{}' is not a timestamp", value.get<std::string>()));
        }
        c.mutable_ints()[r] = *ts;
        break;
      }
    }
  }
  return absl::OkStatus();
}

absl::Status ApplyOneHot(const std::string& name, const json& p, Table& t, Column* src,
                         const Ctx& ctx) {
  std::vector<std::string> cats = p.at("categories").get<std::vector<std::string>>();
  const bool other = p.at("other").get<bool>();
  std::vector<std::string> names;
  for (const std::string& cat : cats) names.push_back(fmt::format("{}={}", name, cat));
  if (other) names.push_back(fmt::format("{}={}", name, kOther));
  std::set<std::string> unique;
  for (const std::string& n : names) {
    if ((t.Find(n) != nullptr && n != name) || !unique.insert(n).second) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: column '{}' would produce '{}', which already exists; rename or drop it first",
          ctx.Where(), name, n));
    }
  }
  const size_t n = src->size();
  std::vector<Column> outs;
  for (const std::string& col : names) {
    outs.emplace_back(col, ColumnType::kFloat64);
    outs.back().mutable_doubles().assign(n, 0.0);
    outs.back().mutable_valid().assign(n, 1);
  }
  std::unordered_map<std::string, size_t> slot;
  for (size_t i = 0; i < cats.size(); ++i) slot.emplace(cats[i], i);
  // String columns map each dictionary code once instead of each row.
  std::vector<int64_t> by_code;
  if (src->type() == ColumnType::kString) {
    for (const std::string& d : src->dictionary()) {
      auto it = slot.find(d);
      by_code.push_back(it == slot.end() ? -1 : static_cast<int64_t>(it->second));
    }
  }
  for (size_t r = 0; r < n; ++r) {
    if (src->is_null(r)) continue;
    int64_t s;
    if (src->type() == ColumnType::kString) {
      s = by_code[static_cast<size_t>(src->code_at(r))];
    } else {
      auto it = slot.find(src->ToText(r));
      s = it == slot.end() ? -1 : static_cast<int64_t>(it->second);
    }
    if (s >= 0) {
      outs[static_cast<size_t>(s)].mutable_doubles()[r] = 1.0;
    } else if (other) {
      outs.back().mutable_doubles()[r] = 1.0;
    }
  }
  std::vector<Column>& cols = t.mutable_columns();
  auto at = cols.begin() + (src - cols.data());
  at = cols.erase(at);
  cols.insert(at, std::make_move_iterator(outs.begin()), std::make_move_iterator(outs.end()));
  return absl::OkStatus();
}

absl::Status ApplyEntry(const json& entry, Table& t, Ctx& ctx) {
  const std::string kind = entry.begin().key();
  const json& p = entry.begin().value();
  if (kind == "select") return ApplySelect(p, t, ctx);
  if (kind == "drop") return ApplyDrop(p, t, ctx);
  if (kind == "rename") return ApplyRename(p, t, ctx);
  if (kind == "filter") {
    absl::StatusOr<std::shared_ptr<const FilterExpr>> e = ParseFilter(p.get<std::string>());
    absl::StatusOr<std::vector<uint8_t>> keep =
        e.ok() ? EvalFilter(**e, t, p.get<std::string>()) : e.status();
    if (!keep.ok()) {
      return absl::InvalidArgumentError(
          fmt::format("{}: {}", ctx.Where(), keep.status().message()));
    }
    t = t.Filter(*keep);
    if (ctx.input_rows != nullptr) {
      std::vector<size_t>& rows = *ctx.input_rows;
      size_t kept = 0;
      for (size_t r = 0; r < rows.size(); ++r) {
        if ((*keep)[r]) rows[kept++] = rows[r];
      }
      rows.resize(kept);
    }
    return absl::OkStatus();
  }
  if (!p.is_object()) {
    return absl::InvalidArgumentError(fmt::format("{}: malformed entry {}", ctx.Where(), p.dump()));
  }
  for (const auto& [name, param] : p.items()) {
    FERRY_ASSIGN_OR_RETURN(Column * c, Lookup(t, name, ctx));
    if (c == nullptr) continue;
    if (kind == "cast") {
      FERRY_ASSIGN_OR_RETURN(ColumnType to, ParseTypeName(param.get<std::string>()));
      absl::StatusOr<Column> cast = CastColumn(*c, to);
      if (!cast.ok()) return ColumnError(ctx, name, std::string(cast.status().message()));
      ReplaceColumn(c, *std::move(cast));
    } else if (kind == "impute") {
      const std::string strategy = param.at("strategy").get<std::string>();
      if ((strategy == "mean" || strategy == "median") && c->type() == ColumnType::kInt64) {
        FERRY_ASSIGN_OR_RETURN(Column f, CastColumn(*c, ColumnType::kFloat64));
        ReplaceColumn(c, std::move(f));
      }
      absl::Status s = Fill(*c, param.at("value"));
      if (!s.ok()) return ColumnError(ctx, name, std::string(s.message()));
    } else if (kind == "one_hot") {
      FERRY_RETURN_IF_ERROR(ApplyOneHot(name, param, t, c, ctx));
    } else if (kind == "standardize" || kind == "min_max") {
      if (!IsNumeric(c->type()) || c->type() == ColumnType::kTimestamp) {
        return ColumnError(
            ctx, name,
            fmt::format("{} needs a numeric column but it is {}", kind, TypeName(c->type())));
      }
      const bool mm = kind == "min_max";
      const double shift = param.at(mm ? "min" : "mean").get<double>();
      const double scale =
          mm ? param.at("max").get<double>() - shift : param.at("std").get<double>();
      // Filled through the raw vectors: this loop runs over every row served.
      const size_t n = c->size();
      Column out(name, ColumnType::kFloat64);
      out.mutable_valid() = c->valid();
      std::vector<double>& values = out.mutable_doubles();
      values.resize(n);
      for (size_t r = 0; r < n; ++r) {
        if (c->is_null(r)) continue;  // a null holds 0.0
        double x = c->AsDouble(r);
        // A constant column (scale 0) maps to 0 rather than to inf/NaN.
        values[r] = std::isnan(x) ? x : (scale > 0 ? (x - shift) / scale : 0.0);
      }
      ReplaceColumn(c, std::move(out));
    } else {
      return absl::InvalidArgumentError(
          fmt::format("{}: unknown op kind '{}' in the fitted state", ctx.Where(), kind));
    }
  }
  return absl::OkStatus();
}

// Splits `train` into train and test (see FitTransform in the header for the algorithm), and
// `train_input_rows` (the input row of each row of `train`) into itself and `test_input_rows`.
absl::StatusOr<json> FitSplit(const TransformOp& op, Table& train, std::optional<Table>& test,
                              std::vector<size_t>& train_input_rows,
                              std::vector<size_t>& test_input_rows, Ctx& ctx) {
  const size_t n = train.num_rows();
  std::vector<std::vector<size_t>> classes;
  if (op.stratify.empty()) {
    classes.emplace_back(n);
    for (size_t r = 0; r < n; ++r) classes[0][r] = r;
  } else {
    FERRY_ASSIGN_OR_RETURN(Column * c, Lookup(train, op.stratify, ctx));
    // (has a value, text): the null class sorts first.
    std::map<std::pair<bool, std::string>, std::vector<size_t>> by_class;
    for (size_t r = 0; r < n; ++r) {
      by_class[{!c->is_null(r), c->ToText(r)}].push_back(r);
    }
    for (auto& [key, rows] : by_class) classes.push_back(std::move(rows));
  }
  std::mt19937_64 rng(op.seed);
  std::vector<uint8_t> is_test(n, 0);
  size_t test_rows = 0;
  for (std::vector<size_t>& rows : classes) {
    for (size_t i = rows.size(); i > 1; --i) {
      size_t j = static_cast<size_t>(rng() % i);
      std::swap(rows[i - 1], rows[j]);
    }
    size_t k =
        static_cast<size_t>(std::llround(op.test_fraction * static_cast<double>(rows.size())));
    for (size_t i = 0; i < k; ++i) is_test[rows[i]] = 1;
    test_rows += k;
  }
  if (test_rows == 0 || test_rows == n) {
    return absl::InvalidArgumentError(fmt::format(
        "{}: splitting {} rows with test {} leaves the {} part empty; use more rows or another "
        "fraction",
        ctx.Where(), n, op.test_fraction, test_rows == 0 ? "test" : "train"));
  }
  test = train.Filter(is_test);
  std::vector<size_t> kept_train;
  test_input_rows.clear();
  for (size_t r = 0; r < n; ++r) {
    (is_test[r] ? test_input_rows : kept_train).push_back(train_input_rows[r]);
  }
  train_input_rows = std::move(kept_train);
  for (uint8_t& b : is_test) b = !b;
  train = train.Filter(is_test);
  json params = {{"test", op.test_fraction},
                 {"seed", op.seed},
                 {"train_rows", train.num_rows()},
                 {"test_rows", test->num_rows()}};
  if (!op.stratify.empty()) params["stratify"] = op.stratify;
  return json{{"split", params}};
}

}  // namespace

absl::StatusOr<std::vector<TransformOp>> ParseOps(const nlohmann::json& ops) {
  if (!ops.is_array()) {
    return absl::InvalidArgumentError(fmt::format(
        "ops: expected a list of ops like [{{select: [a, b]}}, {{one_hot: [plan]}}], got {}",
        ops.dump()));
  }
  std::vector<TransformOp> out;
  std::vector<std::string> errors;
  std::optional<size_t> split_at;
  for (size_t i = 0; i < ops.size(); ++i) {
    const json& entry = ops[i];
    if (!entry.is_object() || entry.size() != 1) {
      errors.push_back(fmt::format(
          "ops[{}]: expected a mapping with one op like {{drop: [customer_id]}}, got {}", i,
          entry.dump()));
      continue;
    }
    TransformOp op{.kind = entry.begin().key(), .args = entry.begin().value()};
    if (std::find(OpKinds().begin(), OpKinds().end(), op.kind) == OpKinds().end()) {
      errors.push_back(fmt::format("ops[{}]: unknown op '{}'{}", i, op.kind,
                                   UnknownKeyHint(op.kind, OpKinds())));
      continue;
    }
    if (absl::Status s = ParseArgs(op); !s.ok()) {
      errors.push_back(fmt::format("{}: {}", Where(i, op.kind), s.message()));
      continue;
    }
    if (op.kind == "split") {
      if (split_at.has_value()) {
        errors.push_back(fmt::format("{}: only one split op is allowed (ops[{}] is one)",
                                     Where(i, op.kind), *split_at));
        continue;
      }
      split_at = i;
    }
    out.push_back(std::move(op));
  }
  if (errors.size() == 1) return absl::InvalidArgumentError(errors[0]);
  if (!errors.empty()) {
    std::string message = fmt::format("{} problems in the transform ops:", errors.size());
    for (const std::string& e : errors) message += "\n  " + e;
    return absl::InvalidArgumentError(message);
  }
  return out;
}

absl::StatusOr<TransformResult> FitTransform(const std::vector<TransformOp>& ops, Table input) {
  TransformResult result;
  result.state = {{"version", 1}, {"input_columns", TableSchema(input)}, {"ops", json::array()}};
  result.train_input_rows.resize(input.num_rows());
  for (size_t r = 0; r < input.num_rows(); ++r) result.train_input_rows[r] = r;
  result.train = std::move(input);
  for (size_t i = 0; i < ops.size(); ++i) {
    const TransformOp& op = ops[i];
    Ctx ctx{.index = i, .kind = op.kind, .input_rows = &result.train_input_rows};
    json entry;
    if (op.kind == "split") {
      if (result.test.has_value()) {
        return absl::InvalidArgumentError(
            fmt::format("{}: only one split op is allowed", ctx.Where()));
      }
      FERRY_ASSIGN_OR_RETURN(entry, FitSplit(op, result.train, result.test, result.train_input_rows,
                                             result.test_input_rows, ctx));
    } else {
      FERRY_ASSIGN_OR_RETURN(entry, FitEntry(op, result.train, ctx));
      FERRY_RETURN_IF_ERROR(ApplyEntry(entry, result.train, ctx));
      if (result.test.has_value()) {
        ctx.part = " on the test part";
        ctx.input_rows = &result.test_input_rows;
        FERRY_RETURN_IF_ERROR(ApplyEntry(entry, *result.test, ctx));
      }
    }
    result.state["ops"].push_back(std::move(entry));
  }
  result.state["output_columns"] = TableSchema(result.train);
  return result;
}

absl::StatusOr<Table> ApplyTransform(const nlohmann::json& state, Table input,
                                     const ApplyOptions& opts) {
  try {
    if (!state.is_object() || !state.contains("version") || !state.contains("ops") ||
        !state.contains("input_columns")) {
      return absl::InvalidArgumentError(
          "the fitted transform state lacks 'version', 'ops' or 'input_columns'; refit the "
          "transform");
    }
    if (state["version"] != 1) {
      return absl::InvalidArgumentError(fmt::format(
          "the fitted transform state has version {}; this build reads version 1: refit the "
          "transform or use a matching ferry",
          state["version"].dump()));
    }
    Ctx ctx{.serving = true, .optional = &opts.optional_columns};
    // An absent input column is optional when any name it takes through the renames is.
    auto optional = [&](const std::string& input_name) {
      std::string name = input_name;
      if (opts.optional_columns.count(name) > 0) return true;
      for (const json& entry : state["ops"]) {
        if (!entry.is_object() || entry.size() != 1 || entry.begin().key() != "rename") continue;
        const json& renames = entry.begin().value();
        if (!renames.contains(name)) continue;
        name = renames[name].get<std::string>();
        if (opts.optional_columns.count(name) > 0) return true;
      }
      return false;
    };
    // Bring the input to the fitted schema: fitted order and types, unknown columns dropped.
    Table t;
    t.mutable_columns().reserve(state["input_columns"].size());
    // Each column of `t` comes from a different column of `input` (`taken`), so its names are
    // unique without Table::AddColumn's check, a scan of every column added before: this runs
    // for every request in serving.
    std::vector<bool> taken(input.num_columns());
    size_t next = 0;  // the input mostly has the fitted order: each column found at once
    for (const json& col : state["input_columns"]) {
      // References, not copies: this runs for every column of every request in serving.
      const std::string& name = col.at("name").get_ref<const std::string&>();
      FERRY_ASSIGN_OR_RETURN(ColumnType type,
                             ParseTypeName(col.at("type").get_ref<const std::string&>()));
      const std::optional<size_t> at = input.IndexOf(name, next);
      if (!at) {
        ctx.absent[name] = optional(name) ? Absence::kOptional : Absence::kRequired;
        continue;
      }
      if (taken[*at]) {
        return absl::InvalidArgumentError(fmt::format(
            "the fitted transform state lists input column '{}' twice; refit the transform", name));
      }
      taken[*at] = true;
      next = *at + 1;
      Column* c = &input.mutable_column(*at);
      if (c->type() == type) {
        t.mutable_columns().push_back(std::move(*c));
        continue;
      }
      absl::StatusOr<Column> cast = CastColumn(*c, type);
      if (!cast.ok()) {
        return absl::InvalidArgumentError(
            fmt::format("input column '{}' is {} but the transform was fitted on {}: {}", name,
                        TypeName(c->type()), TypeName(type), cast.status().message()));
      }
      t.mutable_columns().push_back(*std::move(cast));
    }
    const json& ops = state["ops"];
    for (size_t i = 0; i < ops.size(); ++i) {
      const json& entry = ops[i];
      if (!entry.is_object() || entry.size() != 1) {
        return absl::InvalidArgumentError(
            fmt::format("the fitted transform state's ops[{}] is malformed: {}", i, entry.dump()));
      }
      ctx.index = i;
      ctx.kind = entry.begin().key();
      if (ctx.kind == "filter" || ctx.kind == "split") continue;  // training only
      FERRY_RETURN_IF_ERROR(ApplyEntry(entry, t, ctx));
    }
    // Absent columns still here would have been output columns.
    for (const auto& [name, a] : ctx.absent) {
      if (a == Absence::kRequired && !ctx.IsOptional(name)) {
        ctx.missing.push_back(fmt::format("'{}' (an output column)", name));
      }
    }
    if (!ctx.missing.empty()) {
      return absl::InvalidArgumentError(fmt::format(
          "the input lacks required column{} {}; add {}, or list {} in the optional columns if "
          "{} may be absent at serving time",
          ctx.missing.size() > 1 ? "s" : "", JoinNames(ctx.missing),
          ctx.missing.size() > 1 ? "them" : "it", ctx.missing.size() > 1 ? "them" : "it",
          ctx.missing.size() > 1 ? "they" : "it"));
    }
    return t;
  } catch (const json::exception& e) {
    return absl::InvalidArgumentError(
        fmt::format("the fitted transform state is malformed ({}); refit the transform", e.what()));
  }
}

json TableSchema(const Table& t) {
  json out = json::array();
  for (const Column& c : t.columns()) {
    out.push_back({{"name", c.name()}, {"type", std::string(TypeName(c.type()))}});
  }
  return out;
}

}  // namespace ferry::data
