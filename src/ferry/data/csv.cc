#include "ferry/data/csv.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <deque>
#include <random>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "fast_float/fast_float.h"
#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/parallel.h"
#include "ferry/common/status.h"
#include "fmt/format.h"

// How the reader is correct in parallel. The quote state at any byte is the parity of the '"'
// characters before it: the tokenizer toggles "inside quotes" on every '"' (an escaped '""' toggles
// twice; a stray quote inside an unquoted field opens a quoted section, as it does in most
// lenient parsers). So a row boundary is exactly a '\n' preceded by an even number of quotes. The
// reader counts quotes per byte range in parallel, then moves each range start forward to the next
// newline at even parity: every chunk starts at a true row boundary, and each chunk's parse equals
// what a sequential parse would produce there. Line numbers are counted per chunk (every '\n',
// inside quoted fields too) and made absolute after the parse, in chunk order, so they are exact.

namespace ferry::data {
namespace {

constexpr size_t kMaxBadRowsKept = 20;
constexpr size_t kBadRowTextBytes = 200;

// Runs f(i) for i in [0, n) on up to `threads` threads (the caller's included).

// Large buffers are written once, front to back: transparent huge pages (when the system allows
// them on request) cut the page faults of filling them by 512x.
void AdviseHugePages(const void* p, size_t bytes) {
  constexpr uintptr_t kHuge = 2 << 20;
  if (bytes < 2 * kHuge) return;
  uintptr_t b = (reinterpret_cast<uintptr_t>(p) + kHuge - 1) & ~(kHuge - 1);
  uintptr_t e = (reinterpret_cast<uintptr_t>(p) + bytes) & ~(kHuge - 1);
  if (e > b) ::madvise(reinterpret_cast<void*>(b), e - b, MADV_HUGEPAGE);
}

// A growable array of plain values whose append inlines to a store (the parse loop's hot path).
template <typename T>
class PodBuf {
 public:
  PodBuf() = default;
  PodBuf(PodBuf&& o) noexcept : p_(o.p_), n_(o.n_), cap_(o.cap_), owned_(o.owned_) {
    o.p_ = nullptr;
    o.n_ = o.cap_ = 0;
    o.owned_ = true;
  }
  PodBuf& operator=(PodBuf&& o) noexcept {
    if (this != &o) {
      if (owned_) std::free(p_);
      p_ = o.p_;
      n_ = o.n_;
      cap_ = o.cap_;
      owned_ = o.owned_;
      o.p_ = nullptr;
      o.n_ = o.cap_ = 0;
      o.owned_ = true;
    }
    return *this;
  }
  PodBuf(const PodBuf&) = delete;
  PodBuf& operator=(const PodBuf&) = delete;
  ~PodBuf() {
    if (owned_) std::free(p_);
  }

  // Writes into `cap` slots of someone else's memory (the final column) until it has to grow.
  void Wrap(T* p, size_t cap) {
    if (owned_) std::free(p_);
    p_ = p;
    n_ = 0;
    cap_ = cap;
    owned_ = false;
  }
  bool wraps(const T* p) const { return !owned_ && p_ == p; }

  void push_back(T v) {
    if (n_ == cap_) [[unlikely]]
      Grow(n_ + 1);
    p_[n_++] = v;
  }
  void reserve(size_t n) {
    if (owned_ && n > cap_) Grow(n);
  }
  void resize(size_t n, T v = T()) {
    if (n > cap_) Grow(n);
    for (size_t i = n_; i < n; ++i) p_[i] = v;
    n_ = n;
  }
  void assign(size_t n, T v) {
    n_ = 0;
    resize(n, v);
  }
  void clear() { n_ = 0; }
  size_t size() const { return n_; }
  size_t capacity() const { return cap_; }
  T* data() { return p_; }
  const T* begin() const { return p_; }
  const T* end() const { return p_ + n_; }
  T operator[](size_t i) const { return p_[i]; }

 private:
  void Grow(size_t need) {
    size_t cap = std::max<size_t>({need, cap_ * 2, 16});
    T* q;
    if (owned_) {
      q = static_cast<T*>(std::realloc(p_, cap * sizeof(T)));
    } else {
      q = static_cast<T*>(std::malloc(cap * sizeof(T)));
      if (q != nullptr && n_ > 0) std::memcpy(q, p_, n_ * sizeof(T));
      owned_ = true;
    }
    FERRY_CHECK(q != nullptr);
    p_ = q;
    cap_ = cap;
  }
  T* p_ = nullptr;
  size_t n_ = 0, cap_ = 0;
  bool owned_ = true;
};

template <typename V>
void ReserveHuge(V& v, size_t n) {
  v.reserve(n);
  AdviseHugePages(v.data(), v.capacity() * sizeof(*v.data()));
}

// --- Tokenizer ------------------------------------------------------------------------------

enum class FieldKind : uint8_t {
  kPlain,    // [b, e) is the value
  kQuoted,   // "..." without inner quotes: [b, e) is the value between the quotes
  kEscaped,  // "..." with '""' pairs inside: [b, e) is between the quotes, unescape '""'
  kComplex,  // anything else (text after a closing quote, quotes inside an unquoted field):
             // [b, e) is raw, every '"' toggles quoting and '""' inside quotes is one quote
};

struct Field {
  const char* b;
  const char* e;
  FieldKind kind;
  bool quoted() const {
    return kind != FieldKind::kPlain && !(kind == FieldKind::kComplex && *b != '"');
  }
};

struct StopTable {
  bool stop[256] = {};
  constexpr StopTable() {
    stop[static_cast<uint8_t>(',')] = true;
    stop[static_cast<uint8_t>('\n')] = true;
    stop[static_cast<uint8_t>('"')] = true;
  }
};
constexpr StopTable kStop;

// Scans an unquoted-state stretch where every '"' toggles quoting; stops at ',' or '\n' outside
// quotes, or at `end`. Returns false when `end` is reached inside quotes.
bool GeneralScan(const char*& p, const char* end, bool in_quote, size_t* newlines) {
  for (; p < end; ++p) {
    char c = *p;
    if (c == '"') {
      in_quote = !in_quote;
    } else if (c == '\n') {
      if (!in_quote) break;
      ++*newlines;
    } else if (c == ',' && !in_quote) {
      break;
    }
  }
  return !in_quote;
}

// Splits one row starting at `p` into fields. On return `*next` is the start of the next row and
// `*newlines` counts every '\n' consumed. Returns false when the text ends inside quotes (the row
// then extends to the end of the text).
bool TokenizeRow(const char* p, const char* end, std::vector<Field>* fields, const char** next,
                 size_t* newlines) {
  fields->clear();
  size_t nl = 0;
  while (true) {
    Field f;
    const char* fs = p;
    if (p < end && *p == '"') {
      const char* q = p + 1;
      bool escaped = false;
      bool closed = false;
      for (; q < end; ++q) {
        char c = *q;
        if (c == '"') {
          if (q + 1 < end && q[1] == '"') {
            escaped = true;
            ++q;
            continue;
          }
          closed = true;
          break;
        }
        if (c == '\n') ++nl;
      }
      if (!closed) {
        fields->push_back({fs, end, FieldKind::kComplex});
        *next = end;
        *newlines += nl;
        return false;
      }
      const char* after = q + 1;
      if (after == end || *after == ',' || *after == '\n' ||
          (*after == '\r' && (after + 1 == end || after[1] == '\n'))) {
        f = {p + 1, q, escaped ? FieldKind::kEscaped : FieldKind::kQuoted};
        p = after;
        if (p < end && *p == '\r') ++p;  // only before '\n' or at the end (checked above)
      } else {
        p = after;
        if (!GeneralScan(p, end, false, &nl)) {
          fields->push_back({fs, end, FieldKind::kComplex});
          *next = end;
          *newlines += nl;
          return false;
        }
        f = {fs, p, FieldKind::kComplex};
      }
    } else {
      while (p < end && !kStop.stop[static_cast<uint8_t>(*p)]) ++p;
      if (p < end && *p == '"') {
        if (!GeneralScan(p, end, false, &nl)) {
          fields->push_back({fs, end, FieldKind::kComplex});
          *next = end;
          *newlines += nl;
          return false;
        }
        f = {fs, p, FieldKind::kComplex};
      } else {
        f = {fs, p, FieldKind::kPlain};
      }
    }
    if (p < end && *p == ',') {
      fields->push_back(f);
      ++p;
      continue;
    }
    // The row ends here: a "\r\n" line end leaves its '\r' at the end of an unquoted last field.
    if (f.kind != FieldKind::kQuoted && f.kind != FieldKind::kEscaped && f.e > f.b &&
        f.e[-1] == '\r') {
      --f.e;
    }
    fields->push_back(f);
    if (p < end) {  // at '\n'
      ++nl;
      ++p;
    }
    *next = p;
    *newlines += nl;
    return true;
  }
}

// The value of a field; `scratch` holds it when it had to be unescaped.
std::string_view FieldValue(const Field& f, std::string* scratch) {
  switch (f.kind) {
    case FieldKind::kPlain:
    case FieldKind::kQuoted:
      return std::string_view(f.b, static_cast<size_t>(f.e - f.b));
    case FieldKind::kEscaped:
      scratch->clear();
      for (const char* p = f.b; p < f.e; ++p) {
        scratch->push_back(*p);
        if (*p == '"') ++p;  // '""' -> '"'
      }
      return *scratch;
    case FieldKind::kComplex: {
      scratch->clear();
      bool in_quote = false;
      for (const char* p = f.b; p < f.e; ++p) {
        if (*p == '"') {
          if (in_quote && p + 1 < f.e && p[1] == '"') {
            scratch->push_back('"');
            ++p;
          } else {
            in_quote = !in_quote;
          }
        } else {
          scratch->push_back(*p);
        }
      }
      return *scratch;
    }
  }
  return {};
}

// --- Values ---------------------------------------------------------------------------------

// The column state of inference. Every non-null value falls in exactly one class (int ⊂ number,
// bool, timestamp, other), so a column's type is a small state machine: int -> float on a
// non-integer number, anything else that disagrees -> string.
enum class Kind : uint8_t { kUnknown, kInt, kFloat, kBool, kTs, kStr };

Kind KindOf(ColumnType t) {
  switch (t) {
    case ColumnType::kInt64:
      return Kind::kInt;
    case ColumnType::kFloat64:
      return Kind::kFloat;
    case ColumnType::kBool:
      return Kind::kBool;
    case ColumnType::kTimestamp:
      return Kind::kTs;
    case ColumnType::kString:
      return Kind::kStr;
  }
  return Kind::kStr;
}

ColumnType TypeOf(Kind k) {
  switch (k) {
    case Kind::kInt:
      return ColumnType::kInt64;
    case Kind::kFloat:
      return ColumnType::kFloat64;
    case Kind::kBool:
      return ColumnType::kBool;
    case Kind::kTs:
      return ColumnType::kTimestamp;
    case Kind::kUnknown:
    case Kind::kStr:
      return ColumnType::kString;
  }
  return ColumnType::kString;
}

Kind Join(Kind a, Kind b) {
  if (a == b || b == Kind::kUnknown) return a;
  if (a == Kind::kUnknown) return b;
  if ((a == Kind::kInt && b == Kind::kFloat) || (a == Kind::kFloat && b == Kind::kInt)) {
    return Kind::kFloat;
  }
  return Kind::kStr;
}

bool ParseInt(std::string_view s, int64_t* v) {
  const char* e = s.data() + s.size();
  auto r = std::from_chars(s.data(), e, *v);
  return r.ec == std::errc() && r.ptr == e;
}

bool ParseDouble(std::string_view s, double* v) {
  if (s.empty()) return false;
  const char* e = s.data() + s.size();
  auto r = fast_float::from_chars(s.data(), e, *v);
  return (r.ec == std::errc() || r.ec == std::errc::result_out_of_range) && r.ptr == e;
}

// Clinger's fast path for the common "[-]digits[.digits]" with at most 15 digits: the mantissa
// and 10^k are exact doubles, so one correctly rounded division gives the correctly rounded value,
// the same double fast_float returns. Anything else (exponents, inf/nan, long mantissas) returns
// false and goes to fast_float.
bool ParseSimpleDecimal(const char* p, const char* end, double* out, const char** stop) {
  static constexpr double kPow10[] = {1e0, 1e1, 1e2,  1e3,  1e4,  1e5,  1e6,  1e7,
                                      1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15};
  bool neg = p < end && *p == '-';
  if (neg) ++p;
  const char* start = p;
  uint64_t m = 0;
  while (p < end && static_cast<unsigned>(*p - '0') < 10)
    m = m * 10 + static_cast<unsigned>(*p++ - '0');
  size_t digits = static_cast<size_t>(p - start);
  size_t frac = 0;
  if (p < end && *p == '.') {
    const char* fs = ++p;
    while (p < end && static_cast<unsigned>(*p - '0') < 10)
      m = m * 10 + static_cast<unsigned>(*p++ - '0');
    frac = static_cast<size_t>(p - fs);
    digits += frac;
  }
  if (digits == 0 || digits > 15 || (p < end && (*p == 'e' || *p == 'E'))) return false;
  double v = static_cast<double>(m);
  if (frac > 0) v /= kPow10[frac];
  *out = neg ? -v : v;
  *stop = p;
  return true;
}

bool EqualsNoCase(std::string_view s, std::string_view lower) {
  if (s.size() != lower.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != lower[i]) return false;
  }
  return true;
}

bool ParseBoolText(std::string_view s, int64_t* v) {
  if (s.size() == 4 && EqualsNoCase(s, "true")) {
    *v = 1;
    return true;
  }
  if (s.size() == 5 && EqualsNoCase(s, "false")) {
    *v = 0;
    return true;
  }
  return false;
}

// Matches null_values quickly: most fields (numbers) fail on their first byte.
class NullMatcher {
 public:
  explicit NullMatcher(const std::vector<std::string>& values) : values_(values) {
    for (const std::string& v : values) {
      if (v.empty()) {
        empty_ = true;
        continue;
      }
      first_[static_cast<uint8_t>(v[0])] = true;
      max_len_ = std::max(max_len_, v.size());
    }
  }
  // False when no non-empty null value starts with `c` (so a field starting with it is not null).
  bool MayStartNull(char c) const { return first_[static_cast<uint8_t>(c)]; }
  bool Matches(std::string_view s) const {
    if (s.empty()) return empty_;
    if (s.size() > max_len_ || !first_[static_cast<uint8_t>(s[0])]) return false;
    for (const std::string& v : values_) {
      if (v == s) return true;
    }
    return false;
  }

 private:
  std::vector<std::string> values_;
  bool first_[256] = {};
  bool empty_ = false;
  size_t max_len_ = 0;
};

std::string Clip(std::string_view s, size_t n) {
  if (s.size() <= n) return std::string(s);
  size_t cut = n;
  while (cut > 0 && (static_cast<uint8_t>(s[cut]) & 0xC0) == 0x80) --cut;  // whole UTF-8 chars
  return std::string(s.substr(0, cut));
}

// --- Chunks ---------------------------------------------------------------------------------

struct Context {
  std::string_view text;
  size_t ncols = 0;
  std::vector<std::string> names;
  std::vector<Kind> declared;  // kUnknown: inferred
  std::vector<size_t> declared_idx, inferred_idx;
  NullMatcher nulls;
  bool stop_at_first_bad = false;
  bool keep_all_bad = false;  // quarantine needs every bad row's text
};

struct RawBadRow {
  size_t line;  // chunk-relative until merged
  std::string reason;
  std::string text;
};

// One column's values within a chunk. Strings are coded against a chunk-local dictionary of views
// into the text (or into `owned` when unescaped).
struct ChunkColumn {
  Kind kind = Kind::kUnknown;
  PodBuf<uint8_t> valid;
  PodBuf<int64_t> ints;
  PodBuf<double> doubles;
  PodBuf<int32_t> codes;
  std::vector<std::string_view> dict;
  std::unordered_map<std::string_view, int32_t> index;
  std::deque<std::string> owned;

  size_t size() const { return valid.size(); }

  void Truncate(size_t n) {
    valid.resize(n);
    switch (kind) {
      case Kind::kUnknown:
        break;
      case Kind::kFloat:
        doubles.resize(n);
        break;
      case Kind::kStr:
        codes.resize(n);
        break;
      default:
        ints.resize(n);
        break;
    }
  }
  void PushNull() {
    valid.push_back(0);
    switch (kind) {
      case Kind::kUnknown:
        break;
      case Kind::kFloat:
        doubles.push_back(0.0);
        break;
      case Kind::kStr:
        codes.push_back(-1);
        break;
      default:
        ints.push_back(0);
        break;
    }
  }
  void PushString(const Field& f, std::string_view v) {
    auto it = index.find(v);
    int32_t code;
    if (it != index.end()) {
      code = it->second;
    } else {
      std::string_view key = v;
      if (f.kind == FieldKind::kEscaped || f.kind == FieldKind::kComplex) {
        key = owned.emplace_back(v);
      }
      code = static_cast<int32_t>(dict.size());
      dict.push_back(key);
      index.emplace(key, code);
    }
    valid.push_back(1);
    codes.push_back(code);
  }
  // Switches an empty-or-all-null kUnknown column to `k`, keeping its nulls.
  void Become(Kind k) {
    kind = k;
    size_t n = valid.size();
    switch (k) {
      case Kind::kFloat:
        doubles.assign(n, 0.0);
        break;
      case Kind::kStr:
        codes.assign(n, -1);
        break;
      case Kind::kUnknown:
        break;
      default:
        ints.assign(n, 0);
        break;
    }
  }
  void IntToFloat() {
    doubles.clear();
    doubles.reserve(ints.size());
    for (int64_t v : ints) doubles.push_back(static_cast<double>(v));
    ints = PodBuf<int64_t>();
    kind = Kind::kFloat;
  }
};

struct Chunk {
  size_t begin = 0, end = 0;  // byte offsets into the text
  std::vector<ChunkColumn> cols;
  PodBuf<size_t> row_offsets;  // start offset of every kept row
  size_t rows = 0;
  size_t newlines = 0;
  size_t bad_count = 0;
  std::vector<RawBadRow> bad;
};

// Rebuilds column `j` of `chunk` as strings from the text of its kept rows (a type upgrade to
// string needs the original text, e.g. "007" is not 7).
void ConvertToString(const Context& ctx, Chunk& chunk, size_t j, size_t rows) {
  ChunkColumn& c = chunk.cols[j];
  size_t n = c.valid.size();
  c.valid.clear();
  c.ints.clear();
  c.doubles.clear();
  c.kind = Kind::kStr;
  c.valid.reserve(n);
  c.codes.reserve(n);
  std::vector<Field> fields;
  std::string scratch;
  const char* end = ctx.text.data() + ctx.text.size();
  for (size_t r = 0; r < rows; ++r) {
    const char* next;
    size_t nl = 0;
    TokenizeRow(ctx.text.data() + chunk.row_offsets[r], end, &fields, &next, &nl);
    const Field& f = fields[j];
    std::string_view v = FieldValue(f, &scratch);
    if (!f.quoted() && ctx.nulls.Matches(v)) {
      c.PushNull();
    } else {
      c.PushString(f, v);
    }
  }
}

std::string NotOfType(const Context& ctx, size_t j, std::string_view v, Kind k) {
  return fmt::format("column '{}': '{}' is not {}", ctx.names[j], Clip(v, 60),
                     k == Kind::kInt ? "an int64" : fmt::format("a {}", TypeName(TypeOf(k))));
}

// Appends a declared column's value; false (with `reason`) when it is not of the declared type.
bool AddDeclared(const Context& ctx, ChunkColumn& c, size_t j, const Field& f, std::string* scratch,
                 std::string* reason) {
  std::string_view v = FieldValue(f, scratch);
  bool quoted = f.quoted();
  if (ctx.nulls.Matches(v) && (!quoted || c.kind != Kind::kStr)) {
    c.PushNull();
    return true;
  }
  switch (c.kind) {
    case Kind::kStr:
      c.PushString(f, v);
      return true;
    case Kind::kInt: {
      int64_t x;
      if (!ParseInt(v, &x)) break;
      c.valid.push_back(1);
      c.ints.push_back(x);
      return true;
    }
    case Kind::kFloat: {
      double x;
      if (!ParseDouble(v, &x)) break;
      c.valid.push_back(1);
      c.doubles.push_back(x);
      return true;
    }
    case Kind::kBool: {
      int64_t x;
      if (ParseBoolText(v, &x)) {
      } else if (v == "1" || v == "0") {
        x = v == "1";
      } else {
        break;
      }
      c.valid.push_back(1);
      c.ints.push_back(x);
      return true;
    }
    case Kind::kTs: {
      std::optional<int64_t> t = ParseTimestamp(v);
      if (!t) break;
      c.valid.push_back(1);
      c.ints.push_back(*t);
      return true;
    }
    case Kind::kUnknown:
      break;
  }
  *reason = NotOfType(ctx, j, v, c.kind);
  return false;
}

// Appends an inferred column's value, moving the column along int -> float -> string as needed.
void AddInferred(const Context& ctx, Chunk& chunk, size_t j, const Field& f, std::string* scratch) {
  ChunkColumn& c = chunk.cols[j];
  // Fast path: a plain field in a numeric column that cannot be a null value.
  if (f.kind == FieldKind::kPlain && f.e > f.b && !ctx.nulls.MayStartNull(*f.b)) {
    if (c.kind == Kind::kFloat) {
      double x;
      auto r = fast_float::from_chars(f.b, f.e, x);
      if (r.ptr == f.e && f.e > f.b &&
          (r.ec == std::errc() || r.ec == std::errc::result_out_of_range)) {
        c.valid.push_back(1);
        c.doubles.push_back(x);
        return;
      }
    } else if (c.kind == Kind::kInt) {
      int64_t x;
      auto r = std::from_chars(f.b, f.e, x);
      if (r.ec == std::errc() && r.ptr == f.e) {
        c.valid.push_back(1);
        c.ints.push_back(x);
        return;
      }
    }
  }
  std::string_view v = FieldValue(f, scratch);
  bool quoted = f.quoted();
  if (ctx.nulls.Matches(v)) {
    if (!quoted) {
      c.PushNull();
      return;
    }
    // A quoted null value is a null unless the column is (or becomes) a string column.
    if (c.kind != Kind::kStr) {
      c.PushNull();
      return;
    }
  }
  if (c.kind == Kind::kStr) {
    c.PushString(f, v);
    return;
  }
  int64_t i;
  double d;
  Kind want;
  if (ParseInt(v, &i)) {
    want = Kind::kInt;
  } else if (ParseDouble(v, &d)) {
    want = Kind::kFloat;
  } else if (ParseBoolText(v, &i)) {
    want = Kind::kBool;
  } else if (std::optional<int64_t> t = ParseTimestamp(v)) {
    want = Kind::kTs;
    i = *t;
  } else {
    want = Kind::kStr;
  }
  if (c.kind == Kind::kUnknown && want != Kind::kStr) c.Become(want);
  if (c.kind == Kind::kInt && want == Kind::kFloat) c.IntToFloat();
  if (c.kind == Kind::kFloat && want == Kind::kInt) {
    want = Kind::kFloat;
    d = static_cast<double>(i);
    ParseDouble(v, &d);  // exact text value (e.g. "-0")
  }
  if (want != c.kind) {
    ConvertToString(ctx, chunk, j, chunk.rows);
    c.PushString(f, v);
    return;
  }
  c.valid.push_back(1);
  if (want == Kind::kFloat) {
    c.doubles.push_back(d);
  } else {
    c.ints.push_back(i);
  }
}

// A row of numbers only (every column int64 or float64 so far): each number is parsed straight
// from the text and must be followed by its delimiter. Returns false, with nothing appended, when
// the row needs the general path (a null, a quote, a non-number, a wrong field count...); the
// result is then the same as the general path's, which parses the same bytes the same way.
bool FastNumericRow(const Context& ctx, Chunk& chunk, const char*& p, const char* tend,
                    size_t* newlines) {
  const char* q = p;
  size_t pushed = 0;
  for (size_t j = 0; j < ctx.ncols; ++j) {
    if (q >= tend || ctx.nulls.MayStartNull(*q)) break;
    ChunkColumn& c = chunk.cols[j];
    const char* e;
    if (c.kind == Kind::kFloat) {
      double x;
      if (!ParseSimpleDecimal(q, tend, &x, &e)) {
        auto r = fast_float::from_chars(q, tend, x);
        if (r.ec != std::errc() || r.ptr == q) break;
        e = r.ptr;
      }
      c.doubles.push_back(x);
    } else {
      int64_t x;
      auto r = std::from_chars(q, tend, x);
      if (r.ec != std::errc()) break;
      e = r.ptr;
      c.ints.push_back(x);
    }
    c.valid.push_back(1);
    ++pushed;
    if (j + 1 < ctx.ncols) {
      if (e < tend && *e == ',') {
        q = e + 1;
        continue;
      }
      break;
    }
    if (e == tend) {
      p = e;
      *newlines = 0;
      return true;
    }
    if (*e == '\n' || (*e == '\r' && e + 1 < tend && e[1] == '\n')) {
      p = e + (*e == '\n' ? 1 : 2);
      *newlines = 1;
      return true;
    }
    break;
  }
  for (size_t j = 0; j < pushed; ++j) chunk.cols[j].Truncate(chunk.rows);
  return false;
}

bool AllNumeric(const Chunk& chunk) {
  for (const ChunkColumn& c : chunk.cols) {
    if (c.kind != Kind::kFloat && c.kind != Kind::kInt) return false;
  }
  return !chunk.cols.empty();
}

void ParseChunk(const Context& ctx, Chunk& chunk) {
  chunk.cols.resize(ctx.ncols);
  for (size_t j = 0; j < ctx.ncols; ++j) {
    if (ctx.declared[j] != Kind::kUnknown) {
      chunk.cols[j].kind = ctx.declared[j];
    }
  }
  const char* base = ctx.text.data();
  const char* p = base + chunk.begin;
  const char* cend = base + chunk.end;
  const char* tend = base + ctx.text.size();
  std::vector<Field> fields;
  fields.reserve(ctx.ncols + 1);
  std::string scratch, reason;
  size_t line = 0;
  bool reserved = false;
  auto bad = [&](const char* row, const char* row_end, size_t row_line, std::string why) {
    ++chunk.bad_count;
    if (!ctx.keep_all_bad && chunk.bad.size() >= kMaxBadRowsKept) return;
    while (row_end > row && (row_end[-1] == '\n' || row_end[-1] == '\r')) --row_end;
    chunk.bad.push_back(
        {row_line, std::move(why), std::string(row, static_cast<size_t>(row_end - row))});
  };
  auto committed = [&](const char* row) {
    chunk.row_offsets.push_back(static_cast<size_t>(row - base));
    ++chunk.rows;
    if (!reserved && chunk.rows == 64) {
      // Reserve for the whole chunk from the size of the first rows.
      reserved = true;
      size_t per_row = std::max<size_t>(1, static_cast<size_t>(p - (base + chunk.begin)) / 64);
      size_t est = (chunk.end - chunk.begin) / per_row * 11 / 10 + 16;
      ReserveHuge(chunk.row_offsets, est);
      for (ChunkColumn& c : chunk.cols) {
        ReserveHuge(c.valid, est);
        if (c.kind == Kind::kFloat) ReserveHuge(c.doubles, est);
        if (c.kind == Kind::kInt || c.kind == Kind::kBool || c.kind == Kind::kTs) {
          ReserveHuge(c.ints, est);
        }
        if (c.kind == Kind::kStr) ReserveHuge(c.codes, est);
      }
    }
  };
  bool fast = AllNumeric(chunk);
  while (p < cend) {
    const char* row = p;
    size_t nl = 0;
    if (fast && FastNumericRow(ctx, chunk, p, tend, &nl)) {
      line += nl;
      committed(row);
      continue;
    }
    bool ok = TokenizeRow(p, tend, &fields, &p, &nl);
    size_t row_line = line;
    line += nl;
    if (!ok) {
      bad(row, p, row_line, "unterminated quoted field: a '\"' opens a field that never closes");
      if (ctx.stop_at_first_bad) break;
      continue;
    }
    if (fields.size() == 1 && ctx.ncols > 1 && fields[0].kind == FieldKind::kPlain &&
        fields[0].b == fields[0].e) {
      continue;  // a blank line
    }
    if (fields.size() != ctx.ncols) {
      bad(row, p, row_line, fmt::format("expected {} fields, found {}", ctx.ncols, fields.size()));
      if (ctx.stop_at_first_bad) break;
      continue;
    }
    bool row_ok = true;
    for (size_t k = 0; k < ctx.declared_idx.size(); ++k) {
      size_t j = ctx.declared_idx[k];
      if (!AddDeclared(ctx, chunk.cols[j], j, fields[j], &scratch, &reason)) {
        for (size_t m = 0; m < k; ++m) chunk.cols[ctx.declared_idx[m]].Truncate(chunk.rows);
        row_ok = false;
        break;
      }
    }
    if (!row_ok) {
      bad(row, p, row_line, std::move(reason));
      if (ctx.stop_at_first_bad) break;
      continue;
    }
    for (size_t j : ctx.inferred_idx) AddInferred(ctx, chunk, j, fields[j], &scratch);
    committed(row);
    fast = AllNumeric(chunk);
  }
  chunk.newlines = line;
}

// Counts the bytes equal to `c` in [b, e), 16 at a time.
size_t CountByte(const char* b, const char* e, char c) {
  size_t n = 0;
#ifdef __SSE2__
  const __m128i needle = _mm_set1_epi8(c);
  for (; e - b >= 16; b += 16) {
    __m128i chunk = _mm_loadu_si128(reinterpret_cast<const __m128i*>(b));
    n += static_cast<size_t>(__builtin_popcount(
        static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(chunk, needle)))));
  }
#endif
  for (; b < e; ++b) n += *b == c;
  return n;
}

// Counts '\n' in [b, e).
size_t CountNewlines(const char* b, const char* e) { return CountByte(b, e, '\n'); }

// The kind of each column as its first data row suggests (declared kinds as declared): numeric
// columns get their final storage before the parse, and chunks write into it directly.
std::vector<Kind> PredictKinds(const Context& ctx, size_t begin) {
  std::vector<Kind> out(ctx.ncols, Kind::kUnknown);
  std::vector<Field> fields;
  const char* next;
  size_t nl = 0;
  const char* end = ctx.text.data() + ctx.text.size();
  if (begin >= ctx.text.size() || !TokenizeRow(ctx.text.data() + begin, end, &fields, &next, &nl) ||
      fields.size() != ctx.ncols) {
    return out;
  }
  std::string scratch;
  for (size_t j = 0; j < ctx.ncols; ++j) {
    if (ctx.declared[j] != Kind::kUnknown) {
      out[j] = ctx.declared[j];
      continue;
    }
    std::string_view v = FieldValue(fields[j], &scratch);
    int64_t i;
    double d;
    if (ctx.nulls.Matches(v)) continue;
    if (ParseInt(v, &i)) {
      out[j] = Kind::kInt;
    } else if (ParseDouble(v, &d)) {
      out[j] = Kind::kFloat;
    } else if (ParseBoolText(v, &i)) {
      out[j] = Kind::kBool;
    } else if (ParseTimestamp(v)) {
      out[j] = Kind::kTs;
    }
  }
  return out;
}

// A column's final storage, allocated before the parse for a predicted numeric kind.
struct Prealloc {
  Kind kind = Kind::kUnknown;
  std::vector<uint8_t> valid;
  std::vector<double> doubles;
  std::vector<int64_t> ints;
};

// Row-boundary chunks of [begin, end) (see the comment at the top of this file).
std::vector<std::pair<size_t, size_t>> SplitChunks(std::string_view text, size_t begin,
                                                   size_t nchunks, int threads) {
  size_t len = text.size() - begin;
  if (nchunks <= 1 || len == 0) return {{begin, text.size()}};
  std::vector<size_t> starts(nchunks);
  for (size_t k = 0; k < nchunks; ++k) starts[k] = begin + len * k / nchunks;
  std::vector<size_t> quotes(nchunks);
  ParallelFor(nchunks, threads, [&](size_t k) {
    size_t e = k + 1 < nchunks ? starts[k + 1] : text.size();
    quotes[k] = CountByte(text.data() + starts[k], text.data() + e, '"');
  });
  std::vector<std::pair<size_t, size_t>> out;
  size_t prev = begin;
  size_t parity = 0;
  for (size_t k = 1; k < nchunks; ++k) {
    parity ^= quotes[k - 1] & 1;
    size_t b = starts[k];
    size_t par = parity;
    size_t cut = text.size();
    for (size_t i = b; i < text.size(); ++i) {
      char c = text[i];
      if (c == '"') {
        par ^= 1;
      } else if (c == '\n' && par == 0) {
        cut = i + 1;
        break;
      }
    }
    cut = std::max(cut, prev);
    if (cut > prev) out.emplace_back(prev, cut);
    prev = cut;
  }
  if (prev < text.size()) out.emplace_back(prev, text.size());
  return out;
}

absl::Status WriteQuarantine(const std::string& path, const std::vector<RawBadRow>& rows);

}  // namespace

// --- Quoting shared by writer and quarantine -------------------------------------------------

namespace {

bool IsDefaultNull(std::string_view s) {
  return s.empty() || s == "NA" || s == "N/A" || s == "null" || s == "NULL" || s == "None";
}

void AppendField(std::string_view s, std::string* out) {
  bool quote = IsDefaultNull(s) || s.front() == ' ' || s.back() == ' ' || s.front() == '\t' ||
               s.back() == '\t' || s.find_first_of(",\"\r\n") != std::string_view::npos;
  if (!quote) {
    out->append(s);
    return;
  }
  out->push_back('"');
  for (char c : s) {
    if (c == '"') out->push_back('"');
    out->push_back(c);
  }
  out->push_back('"');
}

void AppendDouble(double v, std::string* out) {
  char buf[64];
  char* e = fmt::format_to(buf, "{}", v);
  out->append(buf, static_cast<size_t>(e - buf));
  // Integral values get ".0" so that they read back as floats (as pandas writes them).
  bool integral = true;
  for (char* p = buf; p < e; ++p) {
    if (!(*p == '-' || (*p >= '0' && *p <= '9'))) {
      integral = false;
      break;
    }
  }
  if (integral) out->append(".0");
}

void AppendInt(int64_t v, std::string* out) {
  char buf[24];
  auto r = std::to_chars(buf, buf + sizeof buf, v);
  out->append(buf, static_cast<size_t>(r.ptr - buf));
}

void AppendHeader(const std::vector<std::string>& names, std::string* out) {
  for (size_t j = 0; j < names.size(); ++j) {
    if (j) out->push_back(',');
    AppendField(names[j], out);
  }
  out->push_back('\n');
}

void AppendRows(const Table& t, size_t from, size_t to, std::string* out) {
  size_t nc = t.num_columns();
  for (size_t r = from; r < to; ++r) {
    for (size_t j = 0; j < nc; ++j) {
      if (j) out->push_back(',');
      const Column& c = t.column(j);
      if (c.is_null(r)) continue;
      switch (c.type()) {
        case ColumnType::kInt64:
          AppendInt(c.int_at(r), out);
          break;
        case ColumnType::kFloat64:
          AppendDouble(c.float_at(r), out);
          break;
        case ColumnType::kString:
          AppendField(c.string_at(r), out);
          break;
        case ColumnType::kBool:
          out->append(c.int_at(r) != 0 ? "true" : "false");
          break;
        case ColumnType::kTimestamp:
          out->append(FormatTimestamp(c.int_at(r)));
          break;
      }
    }
    out->push_back('\n');
  }
}

absl::Status WriteQuarantine(const std::string& path, const std::vector<RawBadRow>& rows) {
  std::string out = "line,reason,text\n";
  for (const RawBadRow& b : rows) {
    AppendInt(static_cast<int64_t>(b.line), &out);
    out.push_back(',');
    AppendField(b.reason, &out);
    out.push_back(',');
    AppendField(b.text, &out);
    out.push_back('\n');
  }
  return WriteFileAtomic(path, out);
}

absl::StatusOr<CsvReadResult> ParseCsv(std::string_view text, const CsvReadOptions& opts,
                                       std::string_view source) {
  if (text.size() >= 3 && text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // BOM
  if (text.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("{} is empty: a CSV file needs a header line with the column names", source));
  }
  if (opts.on_bad_row == BadRowPolicy::kQuarantine && opts.quarantine_path.empty()) {
    return absl::InvalidArgumentError(
        fmt::format("reading {}: on_bad_row is quarantine but no quarantine_path is set", source));
  }
  Context ctx{.text = text, .nulls = NullMatcher(opts.null_values)};
  // Header.
  std::vector<Field> fields;
  const char* data_start;
  size_t header_newlines = 0;
  if (!TokenizeRow(text.data(), text.data() + text.size(), &fields, &data_start,
                   &header_newlines)) {
    return absl::InvalidArgumentError(
        fmt::format("{}:1: unterminated quoted field in the header", source));
  }
  if (fields.size() == 1 && fields[0].kind == FieldKind::kPlain && fields[0].b == fields[0].e) {
    return absl::InvalidArgumentError(fmt::format(
        "{}:1: the header line is empty; the first line must name the columns", source));
  }
  std::string scratch;
  std::unordered_set<std::string> seen;
  std::vector<std::string> dups;
  for (const Field& f : fields) {
    std::string name(FieldValue(f, &scratch));
    if (!seen.insert(name).second && std::find(dups.begin(), dups.end(), name) == dups.end()) {
      dups.push_back(name);
    }
    ctx.names.push_back(std::move(name));
  }
  if (!dups.empty()) {
    std::string list;
    for (const std::string& d : dups) list += fmt::format("{}'{}'", list.empty() ? "" : ", ", d);
    return absl::InvalidArgumentError(fmt::format(
        "{}:1: duplicate column names in the header: {}; every column needs a unique name", source,
        list));
  }
  ctx.ncols = ctx.names.size();
  ctx.declared.assign(ctx.ncols, Kind::kUnknown);
  for (const auto& [name, type] : opts.types) {
    auto it = std::find(ctx.names.begin(), ctx.names.end(), name);
    if (it == ctx.names.end()) {
      std::string list;
      for (const std::string& n : ctx.names)
        list += fmt::format("{}{}", list.empty() ? "" : ", ", n);
      return absl::InvalidArgumentError(fmt::format(
          "{}: a type is declared for column '{}', which is not in the header (columns: {})",
          source, name, list));
    }
    ctx.declared[static_cast<size_t>(it - ctx.names.begin())] = KindOf(type);
  }
  for (size_t j = 0; j < ctx.ncols; ++j) {
    (ctx.declared[j] == Kind::kUnknown ? ctx.inferred_idx : ctx.declared_idx).push_back(j);
  }
  ctx.stop_at_first_bad = opts.on_bad_row == BadRowPolicy::kFail;
  ctx.keep_all_bad = opts.on_bad_row == BadRowPolicy::kQuarantine;

  // Parse the chunks in parallel.
  int threads = ThreadCount(opts.threads);
  size_t begin = static_cast<size_t>(data_start - text.data());
  size_t nchunks = 1;
  if (threads > 1) {
    constexpr size_t kMinChunk = 64 << 10;
    nchunks =
        std::clamp<size_t>((text.size() - begin) / kMinChunk, 1, static_cast<size_t>(threads) * 4);
  }
  std::vector<Chunk> chunks;
  for (auto [b, e] : SplitChunks(text, begin, nchunks, threads)) {
    chunks.emplace_back();
    chunks.back().begin = b;
    chunks.back().end = e;
  }
  // Direct writes: chunk k of a predicted numeric column fills rows [slice[k], slice[k] +
  // bound[k]) of the final storage (bound: its line count + 1, at least its row count); the
  // merge then only closes the gaps left by bad rows, blank lines and multi-line fields.
  std::vector<size_t> bound(chunks.size()), slice(chunks.size());
  ParallelFor(chunks.size(), threads, [&](size_t k) {
    bound[k] = CountNewlines(text.data() + chunks[k].begin, text.data() + chunks[k].end) + 1;
  });
  size_t total_bound = 0;
  for (size_t k = 0; k < chunks.size(); ++k) {
    slice[k] = total_bound;
    total_bound += bound[k];
  }
  std::vector<Kind> predicted = PredictKinds(ctx, begin);
  std::vector<Prealloc> pre(ctx.ncols);
  ParallelFor(ctx.ncols, threads, [&](size_t j) {
    Kind k = predicted[j];
    if (k == Kind::kUnknown || k == Kind::kStr) return;
    Prealloc& pa = pre[j];
    pa.kind = k;
    ReserveHuge(pa.valid, total_bound);
    pa.valid.resize(total_bound);
    if (k == Kind::kFloat) {
      ReserveHuge(pa.doubles, total_bound);
      pa.doubles.resize(total_bound);
    } else {
      ReserveHuge(pa.ints, total_bound);
      pa.ints.resize(total_bound);
    }
  });
  for (size_t k = 0; k < chunks.size(); ++k) {
    chunks[k].cols.resize(ctx.ncols);
    for (size_t j = 0; j < ctx.ncols; ++j) {
      Prealloc& pa = pre[j];
      if (pa.kind == Kind::kUnknown) continue;
      ChunkColumn& c = chunks[k].cols[j];
      c.valid.Wrap(pa.valid.data() + slice[k], bound[k]);
      if (pa.kind == Kind::kFloat) {
        c.doubles.Wrap(pa.doubles.data() + slice[k], bound[k]);
      } else {
        c.ints.Wrap(pa.ints.data() + slice[k], bound[k]);
      }
    }
  }
  ParallelFor(chunks.size(), threads, [&](size_t k) { ParseChunk(ctx, chunks[k]); });

  // Bad rows, in file order with absolute line numbers.
  size_t line = 1 + header_newlines;  // the header's line end is counted in it
  size_t bad_count = 0;
  std::vector<RawBadRow> bad;
  for (Chunk& c : chunks) {
    for (RawBadRow& b : c.bad) {
      b.line += line;
      if (ctx.keep_all_bad || bad.size() < kMaxBadRowsKept) bad.push_back(std::move(b));
    }
    bad_count += c.bad_count;
    line += c.newlines;
    if (ctx.stop_at_first_bad && c.bad_count > 0) break;
  }
  if (bad_count > 0 && opts.on_bad_row == BadRowPolicy::kFail) {
    return absl::InvalidArgumentError(
        fmt::format("{}:{}: {}; set on_bad_row: skip or quarantine to tolerate bad rows", source,
                    bad[0].line, bad[0].reason));
  }
  if (opts.on_bad_row == BadRowPolicy::kQuarantine) {
    FERRY_RETURN_IF_ERROR(WriteQuarantine(opts.quarantine_path, bad));
  }
  if (bad_count > opts.max_bad_rows) {
    return absl::InvalidArgumentError(
        fmt::format("{} bad rows in {}, more than max_bad_rows ({}); first: line {}: {}", bad_count,
                    source, opts.max_bad_rows, bad[0].line, bad[0].reason));
  }

  // Merge the chunks into columns, one column per task.
  size_t total = 0;
  for (const Chunk& c : chunks) total += c.rows;
  std::vector<Column> columns;
  columns.reserve(ctx.ncols);
  for (size_t j = 0; j < ctx.ncols; ++j) {
    Kind k = ctx.declared[j];
    if (k == Kind::kUnknown) {
      for (const Chunk& c : chunks) k = Join(k, c.cols[j].kind);
    }
    columns.emplace_back(ctx.names[j], TypeOf(k));
  }
  ParallelFor(ctx.ncols, threads, [&](size_t j) {
    Column& col = columns[j];
    Kind k = KindOf(col.type());
    Prealloc& pa = pre[j];
    if (pa.kind == k) {
      // Close the gaps in the final storage; chunks that had to leave it are copied in.
      size_t w = 0;
      for (size_t ci = 0; ci < chunks.size(); ++ci) {
        ChunkColumn& c = chunks[ci].cols[j];
        size_t n = chunks[ci].rows;
        if (n == 0) continue;
        std::memmove(pa.valid.data() + w, c.valid.data(), n);
        if (k == Kind::kFloat) {
          double* dst = pa.doubles.data() + w;
          if (c.kind == Kind::kFloat) {
            std::memmove(dst, c.doubles.data(), n * sizeof(double));
          } else if (c.kind == Kind::kInt) {
            for (size_t i = 0; i < n; ++i) dst[i] = static_cast<double>(c.ints[i]);
          } else {
            std::fill(dst, dst + n, 0.0);
          }
        } else if (c.kind != Kind::kUnknown) {
          std::memmove(pa.ints.data() + w, c.ints.data(), n * sizeof(int64_t));
        } else {
          std::fill(pa.ints.data() + w, pa.ints.data() + w + n, 0);
        }
        w += n;
        c = ChunkColumn();
      }
      pa.valid.resize(total);
      col.mutable_valid() = std::move(pa.valid);
      if (k == Kind::kFloat) {
        pa.doubles.resize(total);
        col.mutable_doubles() = std::move(pa.doubles);
      } else {
        pa.ints.resize(total);
        col.mutable_ints() = std::move(pa.ints);
      }
      return;
    }
    // Appended chunk by chunk (no zero-filling resize): each value is written once.
    std::vector<uint8_t>& valid = col.mutable_valid();
    std::vector<double>& doubles = col.mutable_doubles();
    std::vector<int64_t>& ints = col.mutable_ints();
    std::vector<int32_t>& codes = col.mutable_codes();
    ReserveHuge(valid, total);
    switch (k) {
      case Kind::kFloat:
        ReserveHuge(doubles, total);
        break;
      case Kind::kStr:
        ReserveHuge(codes, total);
        break;
      default:
        ReserveHuge(ints, total);
        break;
    }
    for (size_t ci = 0; ci < chunks.size(); ++ci) {
      Chunk& chunk = chunks[ci];
      ChunkColumn& c = chunk.cols[j];
      size_t n = chunk.rows;
      if (n == 0) continue;
      if (k == Kind::kStr && c.kind != Kind::kStr) ConvertToString(ctx, chunk, j, n);
      valid.insert(valid.end(), c.valid.begin(), c.valid.begin() + static_cast<ptrdiff_t>(n));
      switch (k) {
        case Kind::kFloat:
          if (c.kind == Kind::kFloat) {
            doubles.insert(doubles.end(), c.doubles.begin(), c.doubles.end());
          } else if (c.kind == Kind::kInt) {
            for (int64_t v : c.ints) doubles.push_back(static_cast<double>(v));
          } else {
            doubles.insert(doubles.end(), n, 0.0);
          }
          break;
        case Kind::kStr: {
          std::vector<int32_t> remap(c.dict.size(), -1);
          for (int32_t code : c.codes) {
            if (code >= 0) {
              int32_t& m = remap[static_cast<size_t>(code)];
              if (m < 0) m = col.Intern(c.dict[static_cast<size_t>(code)]);
              code = m;
            }
            codes.push_back(code);
          }
          break;
        }
        default:
          if (c.kind != Kind::kUnknown) {
            ints.insert(ints.end(), c.ints.begin(), c.ints.end());
          } else {
            ints.insert(ints.end(), n, 0);
          }
          break;
      }
      // Free the chunk's memory as soon as it is merged.
      c = ChunkColumn();
    }
    pa = Prealloc();
  });

  CsvReadResult result;
  for (Column& c : columns) result.table.AddColumn(std::move(c));
  result.bad_row_count = bad_count;
  for (size_t i = 0; i < bad.size() && i < kMaxBadRowsKept; ++i) {
    result.bad_rows.push_back({bad[i].line, bad[i].reason, Clip(bad[i].text, kBadRowTextBytes)});
  }
  return result;
}

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

// A read-only view of a whole file: mmap'ed, or an owned buffer.
class FileText {
 public:
  ~FileText() {
    if (map_ != nullptr) ::munmap(map_, size_);
  }
  absl::Status Open(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoError("cannot open", path);
    struct stat st;
    if (::fstat(fd, &st) != 0) {
      absl::Status s = ErrnoError("cannot stat", path);
      ::close(fd);
      return s;
    }
    size_ = static_cast<size_t>(st.st_size);
    if (size_ > 0 && S_ISREG(st.st_mode)) {
      void* m = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE | MAP_POPULATE, fd, 0);
      if (m != MAP_FAILED) {
        map_ = m;
        ::close(fd);
        return absl::OkStatus();
      }
    }
    ::close(fd);
    size_ = 0;
    FERRY_ASSIGN_OR_RETURN(owned_, ReadFile(path));
    return absl::OkStatus();
  }
  std::string_view view() const {
    return map_ != nullptr ? std::string_view(static_cast<const char*>(map_), size_)
                           : std::string_view(owned_);
  }

 private:
  void* map_ = nullptr;
  size_t size_ = 0;
  std::string owned_;
};

// --- Writer ---------------------------------------------------------------------------------

class FileCsvWriter final : public CsvWriter {
 public:
  FileCsvWriter(std::string path, std::string tmp, int fd, ZSTD_CCtx* zc)
      : path_(std::move(path)), tmp_(std::move(tmp)), fd_(fd), zc_(zc) {}
  ~FileCsvWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!closed_) ::unlink(tmp_.c_str());
    if (zc_ != nullptr) ZSTD_freeCCtx(zc_);
  }

  absl::Status Write(const Table& chunk) override {
    FERRY_RETURN_IF_ERROR(Usable());
    if (!header_written_) {
      names_ = chunk.ColumnNames();
      for (const Column& c : chunk.columns()) types_.push_back(c.type());
      AppendHeader(names_, &buf_);
      header_written_ = true;
    } else {
      bool same = chunk.num_columns() == names_.size();
      for (size_t j = 0; same && j < names_.size(); ++j) {
        same = chunk.column(j).name() == names_[j] && chunk.column(j).type() == types_[j];
      }
      if (!same) {
        return absl::InvalidArgumentError(fmt::format(
            "writing {}: a chunk's columns differ from the first chunk's ({}); every chunk needs "
            "the same column names and types",
            path_, fmt::join(names_, ", ")));
      }
    }
    constexpr size_t kBatch = 4096;
    for (size_t r = 0; r < chunk.num_rows(); r += kBatch) {
      AppendRows(chunk, r, std::min(chunk.num_rows(), r + kBatch), &buf_);
      if (buf_.size() >= (1 << 20)) FERRY_RETURN_IF_ERROR(Flush(false));
    }
    rows_ += chunk.num_rows();
    return absl::OkStatus();
  }

  absl::Status Close(const std::vector<std::string>& columns) override {
    FERRY_RETURN_IF_ERROR(Usable());
    if (!header_written_ && !columns.empty()) {
      AppendHeader(columns, &buf_);
      header_written_ = true;
    }
    FERRY_RETURN_IF_ERROR(Flush(true));
    if (::fsync(fd_) != 0) return Fail(ErrnoError("cannot fsync", tmp_));
    int fd = fd_;
    fd_ = -1;
    if (::close(fd) != 0) return Fail(ErrnoError("cannot close", tmp_));
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
      return Fail(ErrnoError("cannot rename onto", path_));
    }
    closed_ = true;
    digest_ = sha_.HexDigest();
    return absl::OkStatus();
  }

  size_t rows() const override { return rows_; }
  std::string content_sha256() const override { return digest_; }

 private:
  absl::Status Usable() const {
    if (closed_) {
      return absl::FailedPreconditionError(fmt::format("CSV writer for {} is closed", path_));
    }
    if (!failed_.ok()) return failed_;
    return absl::OkStatus();
  }
  absl::Status Fail(absl::Status s) {
    failed_ = s;
    return s;
  }
  absl::Status WriteAll(const char* p, size_t n) {
    while (n > 0) {
      ssize_t w = ::write(fd_, p, n);
      if (w < 0) {
        if (errno == EINTR) continue;
        return Fail(ErrnoError("cannot write", tmp_));
      }
      p += w;
      n -= static_cast<size_t>(w);
    }
    return absl::OkStatus();
  }
  absl::Status Flush(bool end) {
    sha_.Update(buf_);
    if (zc_ == nullptr) {
      FERRY_RETURN_IF_ERROR(WriteAll(buf_.data(), buf_.size()));
      buf_.clear();
      return absl::OkStatus();
    }
    zbuf_.resize(ZSTD_CStreamOutSize());
    ZSTD_inBuffer in{buf_.data(), buf_.size(), 0};
    while (true) {
      ZSTD_outBuffer out{zbuf_.data(), zbuf_.size(), 0};
      size_t left = ZSTD_compressStream2(zc_, &out, &in, end ? ZSTD_e_end : ZSTD_e_continue);
      if (ZSTD_isError(left)) {
        return Fail(absl::InternalError(
            fmt::format("zstd compression of {} failed: {}", path_, ZSTD_getErrorName(left))));
      }
      FERRY_RETURN_IF_ERROR(WriteAll(zbuf_.data(), out.pos));
      if (end ? left == 0 : in.pos == in.size) break;
    }
    buf_.clear();
    return absl::OkStatus();
  }

  std::string path_, tmp_;
  int fd_;
  ZSTD_CCtx* zc_;
  std::string buf_, zbuf_;
  Sha256 sha_;
  size_t rows_ = 0;
  bool header_written_ = false;
  bool closed_ = false;
  absl::Status failed_;
  std::vector<std::string> names_;
  std::vector<ColumnType> types_;
  std::string digest_;
};

}  // namespace

absl::StatusOr<BadRowPolicy> ParseBadRowPolicy(std::string_view name) {
  if (name == "fail") return BadRowPolicy::kFail;
  if (name == "skip") return BadRowPolicy::kSkip;
  if (name == "quarantine") return BadRowPolicy::kQuarantine;
  return absl::InvalidArgumentError(
      fmt::format("unknown on_bad_row policy '{}'; use fail, skip or quarantine", name));
}

absl::StatusOr<CsvReadResult> ReadCsvString(std::string_view text, const CsvReadOptions& opts,
                                            std::string_view source) {
  return ParseCsv(text, opts, source);
}

absl::StatusOr<CsvReadResult> ReadCsvFile(const std::string& path, const CsvReadOptions& opts) {
  FileText file;
  FERRY_RETURN_IF_ERROR(file.Open(path));
  if (EndsWith(path, ".zst")) {
    FERRY_ASSIGN_OR_RETURN(std::string text, ZstdDecompress(file.view(), path));
    return ParseCsv(text, opts, path);
  }
  return ParseCsv(file.view(), opts, path);
}

absl::StatusOr<std::unique_ptr<CsvWriter>> CsvWriter::Open(const std::string& path,
                                                           const CsvWriteOptions& opts) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  std::string tmp = fmt::format("{}.tmp.{}.{:x}", path, ::getpid(), rng());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoError("cannot create", tmp);
  ZSTD_CCtx* zc = nullptr;
  if (EndsWith(path, ".zst")) {
    zc = ZSTD_createCCtx();
    ZSTD_CCtx_setParameter(zc, ZSTD_c_compressionLevel, opts.zstd_level);
    ZSTD_CCtx_setParameter(zc, ZSTD_c_checksumFlag, 1);
  }
  return std::unique_ptr<CsvWriter>(new FileCsvWriter(path, std::move(tmp), fd, zc));
}

absl::Status WriteCsvFile(const Table& table, const std::string& path,
                          const CsvWriteOptions& opts) {
  FERRY_ASSIGN_OR_RETURN(std::unique_ptr<CsvWriter> w, CsvWriter::Open(path, opts));
  if (table.num_columns() > 0) FERRY_RETURN_IF_ERROR(w->Write(table));
  return w->Close(table.ColumnNames());
}

std::string WriteCsvString(const Table& table) {
  std::string out;
  if (table.num_columns() == 0) return out;
  AppendHeader(table.ColumnNames(), &out);
  AppendRows(table, 0, table.num_rows(), &out);
  return out;
}

absl::StatusOr<std::string> ZstdDecompress(std::string_view src, std::string_view path) {
  std::string out;
  unsigned long long size = ZSTD_getFrameContentSize(src.data(), src.size());
  if (size != ZSTD_CONTENTSIZE_ERROR && size != ZSTD_CONTENTSIZE_UNKNOWN) {
    out.reserve(static_cast<size_t>(size));
  }
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  ZSTD_inBuffer in{src.data(), src.size(), 0};
  size_t ret = 0;
  const size_t step = std::max<size_t>(ZSTD_DStreamOutSize(), 1 << 20);
  while (true) {
    size_t old = out.size();
    out.resize(old + step);
    ZSTD_outBuffer o{out.data() + old, step, 0};
    ret = ZSTD_decompressStream(d.get(), &o, &in);
    out.resize(old + o.pos);
    if (ZSTD_isError(ret)) {
      return absl::InvalidArgumentError(
          fmt::format("{}: not valid zstd data ({})", path, ZSTD_getErrorName(ret)));
    }
    if (in.pos == in.size && o.pos < o.size) break;
  }
  if (ret != 0) {
    return absl::InvalidArgumentError(fmt::format("{}: the zstd data is truncated", path));
  }
  return out;
}

}  // namespace ferry::data
