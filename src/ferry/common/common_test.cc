#include <cstdlib>
#include <filesystem>

#include "ferry/common/fs.h"
#include "ferry/common/hash.h"
#include "ferry/common/ids.h"
#include "ferry/common/strings.h"
#include "ferry/common/units.h"
#include "gtest/gtest.h"

namespace ferry {
namespace {

TEST(HashTest, KnownSha256) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  Sha256 a, b;
  a.Field("ab");
  a.Field("c");
  b.Field("a");
  b.Field("bc");
  EXPECT_NE(a.HexDigest(), b.HexDigest());
}

TEST(UnitsTest, Durations) {
  EXPECT_EQ(*ParseDuration("500ms"), absl::Milliseconds(500));
  EXPECT_EQ(*ParseDuration("30s"), absl::Seconds(30));
  EXPECT_EQ(*ParseDuration("10m"), absl::Minutes(10));
  EXPECT_EQ(*ParseDuration("2h"), absl::Hours(2));
  EXPECT_EQ(*ParseDuration("1.5"), absl::Milliseconds(1500));
  EXPECT_FALSE(ParseDuration("ten").ok());
  EXPECT_FALSE(ParseDuration("10y").ok());
  EXPECT_EQ(HumanDuration(absl::Milliseconds(340)), "340ms");
  EXPECT_EQ(HumanDuration(absl::Seconds(125)), "2m05s");
}

TEST(UnitsTest, Bytes) {
  EXPECT_EQ(*ParseBytes("512Mi"), 512LL * 1024 * 1024);
  EXPECT_EQ(*ParseBytes("1G"), 1000000000LL);
  EXPECT_EQ(*ParseBytes("100"), 100);
  EXPECT_FALSE(ParseBytes("lots").ok());
}

TEST(IdsTest, RunIdsSortAndDiffer) {
  FakeClock clock;
  std::string a = NewRunId(clock);
  clock.Advance(absl::Seconds(1));
  std::string b = NewRunId(clock);
  EXPECT_LT(a, b);
  EXPECT_EQ(a.size(), std::string("r20231114-221320-abcdef").size());
  EXPECT_TRUE(IsValidName("train_model-2"));
  EXPECT_FALSE(IsValidName("../etc"));
  EXPECT_FALSE(IsValidName("a/b"));
  EXPECT_FALSE(IsValidName(""));
}

TEST(IdsTest, UuidV7LayoutAndOrder) {
  FakeClock clock(absl::FromUnixMillis(0x0193a1b2c3d4));
  std::string first = NewUuidV7(clock);
  ASSERT_TRUE(IsUuid(first)) << first;
  EXPECT_EQ(first.substr(0, 13), "0193a1b2-c3d4");  // the 48-bit ms timestamp
  EXPECT_EQ(first[14], '7');                        // version
  EXPECT_NE(std::string("89ab").find(first[19]), std::string::npos) << first;  // variant 10
  // Same ms: strictly increasing (the counter), 5000 ids overflow 12 bits and still sort.
  std::string prev = first;
  for (int i = 0; i < 5000; ++i) {
    std::string next = NewUuidV7(clock);
    ASSERT_LT(prev, next) << i;
    prev = next;
  }
  // A clock that goes back does not reorder ids.
  FakeClock earlier(absl::FromUnixMillis(0x0193a1b2c000));
  EXPECT_LT(prev, NewUuidV7(earlier));
  // Later ms: the timestamp moves.
  clock.Advance(absl::Seconds(10));
  EXPECT_EQ(NewUuidV7(clock).substr(0, 13), "0193a1b2-eae4");
}

TEST(IdsTest, IsUuid) {
  EXPECT_TRUE(IsUuid("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
  EXPECT_TRUE(IsUuid("550E8400-E29B-41D4-A716-446655440000"));  // v4, upper case
  EXPECT_FALSE(IsUuid("0193a1b2c3d47e5f8a9b0c1d2e3f4a5b"));
  EXPECT_FALSE(IsUuid("0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5"));
  EXPECT_FALSE(IsUuid("0193a1b2-c3d4-7e5f-8a9b_0c1d2e3f4a5b"));
  EXPECT_FALSE(IsUuid("g193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"));
  EXPECT_FALSE(IsUuid(""));
}

TEST(FsTest, AtomicWriteAndPaths) {
  std::string dir =
      std::filesystem::temp_directory_path() / ("ferry_fs_" + std::to_string(getpid()));
  ASSERT_TRUE(MakeDirs(dir + "/a/b").ok());
  ASSERT_TRUE(WriteFileAtomic(dir + "/a/b/x.txt", "hello").ok());
  EXPECT_EQ(*ReadFile(dir + "/a/b/x.txt"), "hello");
  ASSERT_TRUE(WriteFileAtomic(dir + "/a/b/x.txt", "again", false).ok());
  EXPECT_EQ(*ReadFile(dir + "/a/b/x.txt"), "again");
  auto files = ListFilesRecursive(dir);
  ASSERT_TRUE(files.ok());
  EXPECT_EQ(*files, std::vector<std::string>{"a/b/x.txt"});
  EXPECT_EQ(ReadFile(dir + "/nope").status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(AbsolutePath("x/../y/./z", "/base"), "/base/y/z");
  EXPECT_EQ(AbsolutePath("/abs//p/", "/base"), "/abs/p");
  ASSERT_TRUE(RemoveAll(dir).ok());
  EXPECT_FALSE(PathExists(dir));
}

}  // namespace
}  // namespace ferry

namespace ferry {
namespace {

TEST(StringsTest, TrimSpaceAndSplitAny) {
  EXPECT_EQ(TrimSpace(" \t psi > 0.2 \r\n"), "psi > 0.2");
  EXPECT_EQ(TrimSpace("   "), "");
  EXPECT_EQ(TrimSpace(""), "");
  EXPECT_EQ(SplitAny("a,,b\nc", ",\n"), (std::vector<std::string_view>{"a", "", "b", "c"}));
  EXPECT_EQ(SplitAny("", ","), (std::vector<std::string_view>{""}));
}

}  // namespace
}  // namespace ferry
