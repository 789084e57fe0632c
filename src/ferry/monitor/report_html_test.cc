#include "ferry/monitor/report_html.h"

#include <gtest/gtest.h>

#include <string>

#include "ferry/common/fs.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor {
namespace {

constexpr std::string_view kDataOpen = "<script type=\"application/json\" id=\"report-data\">";

nlohmann::json Fixture() {
  absl::StatusOr<std::string> text =
      ReadFile(std::string(FERRY_SOURCE_DIR) + "/tests/fixtures/monitor/report.json");
  EXPECT_TRUE(text.ok()) << text.status();
  return nlohmann::json::parse(text.value_or("null"));
}

// The text between the report-data element's opening tag and the first "</script" after it:
// exactly what a browser's HTML parser hands to JSON.parse.
std::string EmbeddedData(const std::string& page) {
  size_t open = page.find(kDataOpen);
  EXPECT_NE(open, std::string::npos);
  if (open == std::string::npos) return "";
  size_t begin = open + kDataOpen.size();
  size_t end = page.find("</script", begin);
  EXPECT_NE(end, std::string::npos);
  return page.substr(begin, end - begin);
}

size_t Count(const std::string& haystack, std::string_view needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

TEST(RenderReportHtml, EmbeddedJsonRoundTrips) {
  nlohmann::json report = Fixture();
  ASSERT_EQ(report["schema"], "ferry.monitor.report/1");
  std::string page = RenderReportHtml(report);
  EXPECT_EQ(nlohmann::json::parse(EmbeddedData(page)), report);
  EXPECT_NE(page.find("<title>ferry monitor · churn</title>"), std::string::npos);
  EXPECT_EQ(page.find("{{"), std::string::npos) << "a placeholder was left in the page";
}

TEST(RenderReportHtml, MarkupInNamesStaysData) {
  const std::string evil = "</script><script>alert(1)</script>";
  nlohmann::json report = Fixture();
  report["endpoint"] = "<b>" + evil;
  report["features"][0]["name"] = evil;
  report["alerts"][0]["message"] = "<!-- " + evil + " -->";
  report["quality"]["new_columns"] = {"</SCRIPT >", "<!--<script>"};

  std::string clean_page = RenderReportHtml(Fixture());
  std::string page = RenderReportHtml(report);
  // No more script elements open or close than in the page of a harmless report.
  EXPECT_EQ(Count(page, "</script"), Count(clean_page, "</script"));
  EXPECT_EQ(Count(page, "<script"), Count(clean_page, "<script"));
  EXPECT_EQ(Count(page, "<!--"), Count(clean_page, "<!--"));
  EXPECT_EQ(page.find("alert(1)</script>"), std::string::npos);
  EXPECT_EQ(page.find("</SCRIPT"), std::string::npos);
  EXPECT_NE(page.find("\\u003c/script\\u003e\\u003cscript\\u003ealert(1)"), std::string::npos);
  // The title is HTML-escaped text.
  EXPECT_NE(page.find("<title>ferry monitor · &lt;b&gt;&lt;/script&gt;&lt;script&gt;alert(1)"
                      "&lt;/script&gt;</title>"),
            std::string::npos);
  // And the data still reads back as the same strings.
  nlohmann::json back = nlohmann::json::parse(EmbeddedData(page));
  EXPECT_EQ(back, report);
  EXPECT_EQ(back["features"][0]["name"], evil);
}

TEST(RenderReportHtml, SelfContained) {
  std::string page = RenderReportHtml(Fixture());
  EXPECT_EQ(page.find("http://"), std::string::npos);
  EXPECT_EQ(page.find("https://"), std::string::npos);
  EXPECT_EQ(page.find("//cdn"), std::string::npos);
  EXPECT_EQ(page.find("<link"), std::string::npos);
  EXPECT_EQ(page.find("@import"), std::string::npos);
  EXPECT_EQ(page.find("<script src"), std::string::npos);
  EXPECT_EQ(page.find("url("), std::string::npos);
  // The drawing script is inline in the page.
  EXPECT_NE(page.find("data-chart"), std::string::npos);
  EXPECT_NE(page.find("bar-reference"), std::string::npos);
}

TEST(RenderReportHtml, AnyJsonRendersAPage) {
  for (const nlohmann::json& report :
       {nlohmann::json(nullptr), nlohmann::json::object(), nlohmann::json::array({1, 2}),
        nlohmann::json{{"endpoint", 42}, {"features", nullptr}, {"performance", nullptr}}}) {
    std::string page = RenderReportHtml(report);
    EXPECT_EQ(nlohmann::json::parse(EmbeddedData(page)), report) << report.dump();
    EXPECT_NE(page.find("<title>ferry monitor · report</title>"), std::string::npos);
  }
}

TEST(RenderReportHtml, InvalidUtf8IsReplacedNotThrown) {
  nlohmann::json report = {{"endpoint", "churn"}, {"features", {{{"name", "bad\xff"}}}}};
  std::string page = RenderReportHtml(report);
  nlohmann::json back = nlohmann::json::parse(EmbeddedData(page));
  EXPECT_EQ(back["features"][0]["name"], "bad\xEF\xBF\xBD");
}

TEST(JsonForScriptElement, EscapesOnlyInsideStrings) {
  nlohmann::json j = {{"a", "<&>"}, {"b", 1.5}};
  EXPECT_EQ(JsonForScriptElement(j), R"({"a":"\u003c\u0026\u003e","b":1.5})");
  EXPECT_EQ(nlohmann::json::parse(JsonForScriptElement(j)), j);
}

TEST(HtmlEscape, EscapesTheFiveCharacters) {
  EXPECT_EQ(HtmlEscape(R"(a<b>&"c'd)"), "a&lt;b&gt;&amp;&quot;c&#39;d");
  EXPECT_EQ(HtmlEscape("plain · text"), "plain · text");
}

}  // namespace
}  // namespace ferry::monitor
