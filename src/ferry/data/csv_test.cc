#include "ferry/data/csv.h"

#include <unistd.h>

#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>

#include "fast_float/fast_float.h"
#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/status.h"
#include "fmt/format.h"
#include "gtest/gtest.h"

namespace ferry::data {
namespace {

class TempDir {
 public:
  TempDir() {
    std::string tmpl = ::testing::TempDir() + "csv_test.XXXXXX";
    FERRY_CHECK(::mkdtemp(tmpl.data()) != nullptr);
    path_ = tmpl;
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string operator/(std::string_view name) const { return fmt::format("{}/{}", path_, name); }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

CsvReadResult Read(std::string_view text, CsvReadOptions opts = {}) {
  absl::StatusOr<CsvReadResult> r = ReadCsvString(text, opts);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? std::move(*r) : CsvReadResult{};
}

std::string ReadError(std::string_view text, CsvReadOptions opts = {}) {
  absl::StatusOr<CsvReadResult> r = ReadCsvString(text, opts);
  EXPECT_FALSE(r.ok());
  if (r.ok()) return "";
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  return std::string(r.status().message());
}

bool SameDouble(double a, double b) {
  if (std::isnan(a)) return std::isnan(b);
  return std::memcmp(&a, &b, sizeof a) == 0;
}

void ExpectTablesEqual(const Table& a, const Table& b) {
  ASSERT_EQ(a.num_columns(), b.num_columns());
  ASSERT_EQ(a.num_rows(), b.num_rows());
  for (size_t j = 0; j < a.num_columns(); ++j) {
    const Column& x = a.column(j);
    const Column& y = b.column(j);
    ASSERT_EQ(x.name(), y.name());
    ASSERT_EQ(x.type(), y.type()) << x.name();
    for (size_t r = 0; r < a.num_rows(); ++r) {
      ASSERT_EQ(x.is_null(r), y.is_null(r)) << x.name() << " row " << r;
      if (x.is_null(r)) continue;
      switch (x.type()) {
        case ColumnType::kFloat64:
          ASSERT_TRUE(SameDouble(x.float_at(r), y.float_at(r)))
              << x.name() << " row " << r << ": " << x.float_at(r) << " vs " << y.float_at(r);
          break;
        case ColumnType::kString:
          ASSERT_EQ(x.string_at(r), y.string_at(r)) << x.name() << " row " << r;
          break;
        default:
          ASSERT_EQ(x.int_at(r), y.int_at(r)) << x.name() << " row " << r;
          break;
      }
    }
  }
}

TEST(CsvRead, InfersEachType) {
  CsvReadResult r = Read(
      "i,f,b,t,s,n,mixed\n"
      "1,1.5,true,2026-11-27,abc,,1\n"
      "-7,2,FALSE,2026-11-27T10:00:00Z,007,NA,true\n"
      ",nan,,2026-11-27 10:00:00.5,,,\n");
  const Table& t = r.table;
  ASSERT_EQ(t.num_rows(), 3u);
  EXPECT_EQ(t.column("i").type(), ColumnType::kInt64);
  EXPECT_EQ(t.column("f").type(), ColumnType::kFloat64);
  EXPECT_EQ(t.column("b").type(), ColumnType::kBool);
  EXPECT_EQ(t.column("t").type(), ColumnType::kTimestamp);
  EXPECT_EQ(t.column("s").type(), ColumnType::kString);
  EXPECT_EQ(t.column("n").type(), ColumnType::kString);  // nulls only
  EXPECT_EQ(t.column("mixed").type(), ColumnType::kString);
  EXPECT_EQ(t.column("i").int_at(1), -7);
  EXPECT_TRUE(t.column("i").is_null(2));
  EXPECT_EQ(t.column("f").float_at(0), 1.5);
  EXPECT_EQ(t.column("f").float_at(1), 2.0);
  EXPECT_TRUE(std::isnan(t.column("f").float_at(2)));
  EXPECT_FALSE(t.column("f").is_null(2));
  EXPECT_EQ(t.column("b").int_at(0), 1);
  EXPECT_EQ(t.column("b").int_at(1), 0);
  EXPECT_EQ(t.column("t").int_at(0), 1795737600000000);
  EXPECT_EQ(t.column("t").int_at(1), 1795737600000000 + 36000000000);
  EXPECT_EQ(t.column("t").int_at(2), 1795737600000000 + 36000500000);
  EXPECT_EQ(t.column("s").string_at(1), "007");  // the original text, not 7
  EXPECT_EQ(t.column("n").null_count(), 3u);
  EXPECT_EQ(t.column("mixed").string_at(0), "1");
  EXPECT_EQ(t.column("mixed").string_at(1), "true");
  EXPECT_TRUE(t.column("mixed").is_null(2));
}

TEST(CsvRead, LateValuesChangeTheInferredType) {
  std::string text = "a,b,c\n";
  for (int i = 0; i < 100; ++i) text += fmt::format("{},{},\n", i, i);
  text += "1.25,x,5\n";
  CsvReadResult r = Read(text);
  EXPECT_EQ(r.table.column("a").type(), ColumnType::kFloat64);
  EXPECT_EQ(r.table.column("a").float_at(99), 99.0);
  EXPECT_EQ(r.table.column("a").float_at(100), 1.25);
  EXPECT_EQ(r.table.column("b").type(), ColumnType::kString);
  EXPECT_EQ(r.table.column("b").string_at(42), "42");
  EXPECT_EQ(r.table.column("b").string_at(100), "x");
  EXPECT_EQ(r.table.column("c").type(), ColumnType::kInt64);
  EXPECT_EQ(r.table.column("c").null_count(), 100u);
  EXPECT_EQ(r.table.column("c").int_at(100), 5);
}

TEST(CsvRead, DeclaredTypesTakePrecedence) {
  CsvReadOptions opts{.types = {{"zip", ColumnType::kString},
                                {"x", ColumnType::kFloat64},
                                {"ok", ColumnType::kBool},
                                {"at", ColumnType::kTimestamp}}};
  CsvReadResult r = Read("zip,x,ok,at\n007,3,1,2026-01-02\n10,,False,\n", opts);
  const Table& t = r.table;
  EXPECT_EQ(t.column("zip").type(), ColumnType::kString);
  EXPECT_EQ(t.column("zip").string_at(0), "007");
  EXPECT_EQ(t.column("x").type(), ColumnType::kFloat64);
  EXPECT_EQ(t.column("x").float_at(0), 3.0);
  EXPECT_TRUE(t.column("x").is_null(1));
  EXPECT_EQ(t.column("ok").int_at(0), 1);
  EXPECT_EQ(t.column("ok").int_at(1), 0);
  EXPECT_EQ(t.column("at").type(), ColumnType::kTimestamp);
  EXPECT_TRUE(t.column("at").is_null(1));

  EXPECT_EQ(ReadError("a,b\n1,2\n", {.types = {{"c", ColumnType::kInt64}}}),
            "<csv>: a type is declared for column 'c', which is not in the header (columns: a, b)");
}

TEST(CsvRead, ValueNotOfDeclaredTypeIsABadRow) {
  CsvReadOptions opts{.types = {{"age", ColumnType::kInt64}}};
  EXPECT_EQ(ReadError("name,age\nann,3\nbob,x\n", opts),
            "<csv>:3: column 'age': 'x' is not an int64; set on_bad_row: skip or quarantine to "
            "tolerate bad rows");
  // A bad row leaves nothing behind in the declared columns nor in the inferred ones.
  opts.types = {{"a", ColumnType::kString}, {"c", ColumnType::kBool}};
  opts.on_bad_row = BadRowPolicy::kSkip;
  opts.max_bad_rows = 5;
  CsvReadResult r = Read("a,b,c\nx,1,true\ny,word,maybe\nz,2,false\n", opts);
  ASSERT_EQ(r.table.num_rows(), 2u);
  EXPECT_EQ(r.table.column("a").string_at(1), "z");
  EXPECT_EQ(r.table.column("a").dictionary(), (std::vector<std::string>{"x", "z"}));
  EXPECT_EQ(r.table.column("b").type(), ColumnType::kInt64);  // "word" was in the bad row
  EXPECT_EQ(r.table.column("c").int_at(1), 0);
  ASSERT_EQ(r.bad_rows.size(), 1u);
  EXPECT_EQ(r.bad_rows[0].reason, "column 'c': 'maybe' is not a bool");
}

TEST(CsvRead, NullValues) {
  CsvReadResult r = Read("s,i\nNA,1\n\"\",\"\"\nNULL,N/A\n\"NA\",None\n");
  const Column& s = r.table.column("s");
  const Column& i = r.table.column("i");
  EXPECT_EQ(s.type(), ColumnType::kString);
  EXPECT_EQ(i.type(), ColumnType::kInt64);
  EXPECT_TRUE(s.is_null(0));
  EXPECT_FALSE(s.is_null(1));  // a quoted empty field is an empty string in a string column...
  EXPECT_EQ(s.string_at(1), "");
  EXPECT_TRUE(i.is_null(1));  // ...and a null in any other
  EXPECT_TRUE(s.is_null(2));
  EXPECT_EQ(s.string_at(3), "NA");
  EXPECT_EQ(i.null_count(), 3u);

  CsvReadResult custom = Read("a\n-\nx\n", {.null_values = {"-"}});
  EXPECT_TRUE(custom.table.column("a").is_null(0));
  EXPECT_EQ(custom.table.column("a").string_at(1), "x");
}

TEST(CsvRead, CrlfLineEnds) {
  CsvReadResult r = Read("a,b\r\n1,x\r\n2,\"y\"\r\n3,\r\n");
  ASSERT_EQ(r.table.num_rows(), 3u);
  EXPECT_EQ(r.table.column("a").type(), ColumnType::kInt64);
  EXPECT_EQ(r.table.column("a").int_at(2), 3);
  EXPECT_EQ(r.table.column("b").string_at(0), "x");
  EXPECT_EQ(r.table.column("b").string_at(1), "y");
  EXPECT_TRUE(r.table.column("b").is_null(2));
}

TEST(CsvRead, QuotedFieldsAndBlankLines) {
  CsvReadResult r = Read("\"a b\",c\n\"x, \"\"y\"\"\",1\n\n\"multi\nline\",2\nlast,3");
  ASSERT_EQ(r.table.num_rows(), 3u);
  EXPECT_EQ(r.table.column(0).name(), "a b");
  EXPECT_EQ(r.table.column("a b").string_at(0), "x, \"y\"");
  EXPECT_EQ(r.table.column("a b").string_at(1), "multi\nline");
  EXPECT_EQ(r.table.column("a b").string_at(2), "last");
  EXPECT_EQ(r.table.column("c").int_at(2), 3);
}

TEST(CsvRead, LineNumbersCountLinesInsideQuotedFields) {
  // Line 1 header; row at line 2 spans lines 2-4; line 5 fine; line 6 spans 6-7; line 8 is bad.
  std::string text = "id,note\n1,\"a\nb\nc\"\n2,ok\n3,\"x\r\ny\"\n4,too,many\n5,fine\n";
  EXPECT_EQ(ReadError(text),
            "<csv>:8: expected 2 fields, found 3; set on_bad_row: skip or quarantine to tolerate "
            "bad rows");
  CsvReadResult r = Read(text, {.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 1});
  ASSERT_EQ(r.table.num_rows(), 4u);
  EXPECT_EQ(r.table.column("note").string_at(0), "a\nb\nc");
  EXPECT_EQ(r.table.column("note").string_at(2), "x\r\ny");
  EXPECT_EQ(r.bad_row_count, 1u);
  ASSERT_EQ(r.bad_rows.size(), 1u);
  EXPECT_EQ(r.bad_rows[0].line, 8u);
  EXPECT_EQ(r.bad_rows[0].reason, "expected 2 fields, found 3");
  EXPECT_EQ(r.bad_rows[0].text, "4,too,many");
}

TEST(CsvRead, UnterminatedQuoteIsABadRow) {
  CsvReadResult r =
      Read("a,b\n1,x\n2,\"open\n3,y\n", {.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 1});
  ASSERT_EQ(r.table.num_rows(), 1u);
  ASSERT_EQ(r.bad_rows.size(), 1u);
  EXPECT_EQ(r.bad_rows[0].line, 3u);
  EXPECT_EQ(r.bad_rows[0].reason,
            "unterminated quoted field: a '\"' opens a field that never closes");
  EXPECT_EQ(r.bad_rows[0].text, "2,\"open\n3,y");
}

TEST(CsvRead, SkipPolicyCountsAndLimits) {
  std::string text = "a,b\n1,2\n3\n4,5\n6,7,8\n9,10\n11\n";
  CsvReadResult r = Read(text, {.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 3});
  EXPECT_EQ(r.table.num_rows(), 3u);
  EXPECT_EQ(r.bad_row_count, 3u);
  ASSERT_EQ(r.bad_rows.size(), 3u);
  EXPECT_EQ(r.bad_rows[0].line, 3u);
  EXPECT_EQ(r.bad_rows[1].line, 5u);
  EXPECT_EQ(r.bad_rows[1].reason, "expected 2 fields, found 3");
  EXPECT_EQ(r.bad_rows[2].line, 7u);
  EXPECT_EQ(r.table.column("b").int_at(2), 10);

  EXPECT_EQ(ReadError(text, {.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 2}),
            "3 bad rows in <csv>, more than max_bad_rows (2); first: line 3: expected 2 fields, "
            "found 1");
}

TEST(CsvRead, QuarantinePolicyWritesBadRows) {
  TempDir dir;
  std::string q = dir / "bad.csv";
  CsvReadOptions opts{.types = {{"n", ColumnType::kInt64}},
                      .on_bad_row = BadRowPolicy::kQuarantine,
                      .max_bad_rows = 10,
                      .quarantine_path = q};
  CsvReadResult r = Read("n,s\n1,a\nx,\"b,c\"\n2\n3,\"d\ne\"\n", opts);
  EXPECT_EQ(r.table.num_rows(), 2u);
  EXPECT_EQ(r.bad_row_count, 2u);
  absl::StatusOr<std::string> content = ReadFile(q);
  ASSERT_TRUE(content.ok()) << content.status();
  EXPECT_EQ(*content,
            "line,reason,text\n"
            "3,column 'n': 'x' is not an int64,\"x,\"\"b,c\"\"\"\n"
            "4,\"expected 2 fields, found 1\",2\n");
  EXPECT_FALSE(ReadCsvString("n\n1\n", {.on_bad_row = BadRowPolicy::kQuarantine}).ok());
}

TEST(CsvRead, HeaderErrors) {
  EXPECT_EQ(ReadError(""), "<csv> is empty: a CSV file needs a header line with the column names");
  EXPECT_EQ(ReadError("\n1,2\n"),
            "<csv>:1: the header line is empty; the first line must name the columns");
  EXPECT_EQ(ReadError("a,b,a,c,b\n1,2,3,4,5\n"),
            "<csv>:1: duplicate column names in the header: 'a', 'b'; every column needs a unique "
            "name");
  absl::StatusOr<CsvReadResult> r = ReadCsvFile("/nonexistent/x.csv");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
}

TEST(CsvRead, HeaderOnlyGivesEmptyColumns) {
  CsvReadResult r = Read("a,b\n");
  EXPECT_EQ(r.table.num_columns(), 2u);
  EXPECT_EQ(r.table.num_rows(), 0u);
}

Table AllTypesTable() {
  Table t;
  t.AddColumn("i", ColumnType::kInt64);
  t.AddColumn("f", ColumnType::kFloat64);
  t.AddColumn("s, \"quoted\"", ColumnType::kString);
  t.AddColumn("b", ColumnType::kBool);
  t.AddColumn("ts", ColumnType::kTimestamp);
  Column& i = t.mutable_column(0);  // references taken after the last AddColumn
  Column& f = t.mutable_column(1);
  Column& s = t.mutable_column(2);
  Column& b = t.mutable_column(3);
  Column& ts = t.mutable_column(4);
  const std::vector<std::string> strings = {
      "plain",    "comma, inside", "quote \" inside",  "new\nline", "crlf\r\nend",
      " leading", "trailing ",     "unicode é ✓ 日本", "",          "NA",
      "\"",       "null"};
  const std::vector<double> floats = {0.1,  1.0, -2.5e-300,  1e300,   3.0,  -0.0,
                                      1e16, 0.5, 123456.789, 2.0 / 3, -7.0, 1e-5};
  for (size_t r = 0; r < strings.size(); ++r) {
    bool null = r % 5 == 4;
    null ? i.AppendNull() : i.AppendInt(static_cast<int64_t>(r * 1000003) - 5000000);
    null ? f.AppendNull() : f.AppendDouble(floats[r]);
    r == 7 ? s.AppendNull() : s.AppendString(strings[r]);
    null ? b.AppendNull() : b.AppendBool(r % 2 == 0);
    null ? ts.AppendNull() : ts.AppendInt(1795737600000000 + static_cast<int64_t>(r) * 1234567);
  }
  return t;
}

TEST(CsvWrite, RoundTripEveryTypeInferred) {
  Table t = AllTypesTable();
  std::string text = WriteCsvString(t);
  CsvReadResult back = Read(text, {.types = {{"s, \"quoted\"", ColumnType::kString}}});
  ExpectTablesEqual(t, back.table);
  // Written values use the dialect's shortest forms.
  EXPECT_EQ(text.substr(0, text.find('\n')), "i,f,\"s, \"\"quoted\"\"\",b,ts");
  EXPECT_NE(text.find("\n-5000000,0.1,plain,true,2026-11-27T00:00:00Z\n"), std::string::npos);
  EXPECT_NE(text.find(",1.0,\"comma, inside\",false,"), std::string::npos);
  EXPECT_NE(text.find(",\"\","), std::string::npos);    // empty string, quoted
  EXPECT_NE(text.find(",\"NA\","), std::string::npos);  // a null value, quoted
}

TEST(CsvWrite, RoundTripThroughFilesAndZstd) {
  TempDir dir;
  Table t = AllTypesTable();
  CsvReadOptions opts{.types = {{"s, \"quoted\"", ColumnType::kString}}};
  for (std::string name : {"data.csv", "data.csv.zst"}) {
    std::string path = dir / name;
    absl::StatusOr<std::unique_ptr<CsvWriter>> w = CsvWriter::Open(path, {.zstd_level = 5});
    ASSERT_TRUE(w.ok()) << w.status();
    ASSERT_TRUE((*w)->Write(t.Take({0, 1, 2, 3, 4})).ok());
    ASSERT_TRUE((*w)->Write(t.Take({5, 6, 7, 8, 9, 10, 11})).ok());
    EXPECT_FALSE(PathExists(path));  // only on Close
    ASSERT_TRUE((*w)->Close().ok());
    EXPECT_EQ((*w)->rows(), 12u);
    EXPECT_EQ((*w)->content_sha256(), Sha256Hex(WriteCsvString(t)));
    absl::StatusOr<CsvReadResult> back = ReadCsvFile(path, opts);
    ASSERT_TRUE(back.ok()) << back.status();
    ExpectTablesEqual(t, back->table);
  }
  absl::StatusOr<std::string> raw = ReadFile(dir / "data.csv.zst");
  ASSERT_TRUE(raw.ok());
  EXPECT_EQ(raw->substr(0, 4), "\x28\xB5\x2F\xFD");  // the zstd magic number
  absl::StatusOr<std::vector<std::string>> files = ListFilesRecursive(dir.path());
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files, (std::vector<std::string>{"data.csv", "data.csv.zst"}));  // no temp files
}

TEST(CsvWrite, WriterWithoutCloseLeavesNothing) {
  TempDir dir;
  {
    absl::StatusOr<std::unique_ptr<CsvWriter>> w = CsvWriter::Open(dir / "x.csv.zst");
    ASSERT_TRUE(w.ok());
    ASSERT_TRUE((*w)->Write(AllTypesTable()).ok());
  }
  absl::StatusOr<std::vector<std::string>> files = ListFilesRecursive(dir.path());
  ASSERT_TRUE(files.ok());
  EXPECT_TRUE(files->empty());
}

TEST(CsvWrite, ChunksMustMatchAndHeaderOnlyClose) {
  TempDir dir;
  absl::StatusOr<std::unique_ptr<CsvWriter>> w = CsvWriter::Open(dir / "x.csv");
  ASSERT_TRUE(w.ok());
  Table a;
  a.AddColumn("a", ColumnType::kInt64).AppendInt(1);
  Table b;
  b.AddColumn("a", ColumnType::kString).AppendString("x");
  ASSERT_TRUE((*w)->Write(a).ok());
  absl::Status s = (*w)->Write(b);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);

  absl::StatusOr<std::unique_ptr<CsvWriter>> h = CsvWriter::Open(dir / "h.csv");
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Close({"x", "y"}).ok());
  EXPECT_EQ(*ReadFile(dir / "h.csv"), "x,y\n");
  EXPECT_EQ((*h)->content_sha256(), Sha256Hex("x,y\n"));
  EXPECT_EQ((*h)->Close().code(), absl::StatusCode::kFailedPrecondition);
}

TEST(CsvWrite, SingleColumnNullsSurvive) {
  Table t;
  Column& c = t.AddColumn("v", ColumnType::kFloat64);
  c.AppendDouble(1.5);
  c.AppendNull();
  c.AppendDouble(2);
  std::string text = WriteCsvString(t);
  EXPECT_EQ(text, "v\n1.5\n\n2.0\n");
  ExpectTablesEqual(t, Read(text).table);
}

// A generated text with every hard case spread over the whole file: quoted fields with commas,
// quotes and newlines, CRLF, nulls, a column that turns into strings in its last row, a column
// null in its first half, and bad rows.
std::string GeneratedText(size_t rows) {
  std::mt19937_64 rng(42);
  std::string text = "id,x,note,flag,late,half\n";
  for (size_t r = 0; r < rows; ++r) {
    uint64_t u = rng();
    std::string note;
    switch (u % 7) {
      case 0:
        note = "\"multi\nline, \"\"quoted\"\"\"";
        break;
      case 1:
        note = "";
        break;
      case 2:
        note = fmt::format("cat{}", u % 13);
        break;
      case 3:
        note = "\"a,b\"";
        break;
      default:
        note = fmt::format("w{}", u % 5);
        break;
    }
    std::string late = r + 1 == rows ? "oops" : fmt::format("{}", r);
    std::string half = r < rows / 2 ? "" : fmt::format("{}.5", r % 100);
    std::string end = (u >> 8) % 11 == 0 ? "\r\n" : "\n";
    if ((u >> 16) % 997 == 0) {
      text += fmt::format("{},bad row{}", r, end);
      continue;
    }
    text += fmt::format("{},{},{},{},{},{}{}", r, static_cast<double>(u % 100000) / 64, note,
                        (u >> 20) % 2 ? "true" : "false", late, half, end);
  }
  return text;
}

TEST(CsvRead, ParallelParseEqualsSequential) {
  std::string text = GeneratedText(100000);
  CsvReadOptions opts{.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 1000, .threads = 1};
  CsvReadResult one = Read(text, opts);
  opts.threads = 4;
  CsvReadResult four = Read(text, opts);
  ASSERT_GT(one.table.num_rows(), 99000u);
  EXPECT_EQ(one.table.column("late").type(), ColumnType::kString);
  EXPECT_EQ(one.table.column("half").type(), ColumnType::kFloat64);
  EXPECT_EQ(one.table.column("flag").type(), ColumnType::kBool);
  ExpectTablesEqual(one.table, four.table);
  EXPECT_EQ(one.table.column("note").dictionary(), four.table.column("note").dictionary());
  EXPECT_EQ(one.table.column("late").dictionary(), four.table.column("late").dictionary());
  EXPECT_GT(one.bad_row_count, 50u);
  ASSERT_EQ(one.bad_row_count, four.bad_row_count);
  ASSERT_EQ(one.bad_rows.size(), four.bad_rows.size());
  for (size_t i = 0; i < one.bad_rows.size(); ++i) {
    EXPECT_EQ(one.bad_rows[i].line, four.bad_rows[i].line);
    EXPECT_EQ(one.bad_rows[i].text, four.bad_rows[i].text);
  }
  // The line of a bad row is where its text starts in the file.
  const BadRow& b = four.bad_rows.back();
  size_t line = 1, pos = 0;
  size_t at = text.find("\n" + b.text + "\n");
  if (at == std::string::npos) at = text.find("\n" + b.text + "\r\n");
  ASSERT_NE(at, std::string::npos);
  while ((pos = text.find('\n', pos)) != std::string::npos && pos <= at) {
    ++line;
    ++pos;
  }
  EXPECT_EQ(b.line, line);
}

// Rows of numbers only take a fast path; its values must be the very doubles fast_float parses
// from the same text, whatever the spelling, and nulls, late floats in an int column and bad
// rows must fall back to the general path.
TEST(CsvRead, NumericFastPathParsesExactly) {
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> unit(-1, 1);
  std::vector<std::string> spelled;
  std::string text = "x,i\n";
  for (int r = 0; r < 20000; ++r) {
    double v = unit(rng) * std::pow(10.0, static_cast<int>(rng() % 30) - 12);
    std::string s;
    switch (rng() % 8) {
      case 0:
        s = fmt::format("{}", v);
        break;  // shortest, up to 17 digits, maybe an exponent
      case 1:
        s = fmt::format("{:e}", v);
        break;
      case 2:
        s = fmt::format("{:.1f}", v);
        break;
      case 3:
        s = fmt::format("{:.15f}", v);
        break;
      case 4:
        s = r % 3 ? "-0.0" : ".5";
        break;
      case 5:
        s = "5.";
        break;
      default:
        s = fmt::format("{:.{}f}", v, rng() % 7);
        break;
    }
    spelled.push_back(s);
    std::string i = r == 15000 ? "2.5" : fmt::format("{}", r);
    if (r % 997 == 5) i = "";          // a null
    if (r % 1999 == 7) i += ",extra";  // a bad row
    text += fmt::format("{},{}\n", s, i);
  }
  for (int threads : {1, 2}) {
    CsvReadResult r =
        Read(text, {.on_bad_row = BadRowPolicy::kSkip, .max_bad_rows = 100, .threads = threads});
    const Column& x = r.table.column("x");
    const Column& i = r.table.column("i");
    ASSERT_EQ(x.type(), ColumnType::kFloat64);
    ASSERT_EQ(i.type(), ColumnType::kFloat64);  // ints until row 15000
    EXPECT_EQ(r.bad_row_count, 11u);
    size_t row = 0;
    for (int k = 0; k < 20000; ++k) {
      if (k % 1999 == 7) continue;
      double want;
      const std::string& s = spelled[static_cast<size_t>(k)];
      fast_float::from_chars(s.data(), s.data() + s.size(), want);
      ASSERT_TRUE(SameDouble(x.float_at(row), want)) << s << " at row " << row;
      ASSERT_EQ(i.is_null(row), k % 997 == 5) << row;
      if (!i.is_null(row)) {
        ASSERT_EQ(i.float_at(row), k == 15000 ? 2.5 : k) << row;
      }
      ++row;
    }
    EXPECT_EQ(row, r.table.num_rows());
  }
}

TEST(CsvRead, ParseBadRowPolicy) {
  EXPECT_EQ(*ParseBadRowPolicy("quarantine"), BadRowPolicy::kQuarantine);
  EXPECT_EQ(*ParseBadRowPolicy("skip"), BadRowPolicy::kSkip);
  EXPECT_EQ(*ParseBadRowPolicy("fail"), BadRowPolicy::kFail);
  EXPECT_EQ(ParseBadRowPolicy("ignore").status().message(),
            "unknown on_bad_row policy 'ignore'; use fail, skip or quarantine");
}

}  // namespace
}  // namespace ferry::data
