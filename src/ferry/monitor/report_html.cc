#include "ferry/monitor/report_html.h"

#include <algorithm>
#include <string>
#include <string_view>

#include "fmt/format.h"
#include "nlohmann/json.hpp"

namespace ferry::monitor {

// The page template (report_template.html), embedded at build time by CMake into a generated
// source file (see CMakeLists.txt).
extern const std::string_view kReportTemplate;

namespace {

constexpr std::string_view kTitlePlaceholder = "{{title}}";
constexpr std::string_view kJsonPlaceholder = "{{report_json}}";

}  // namespace

std::string HtmlEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string JsonForScriptElement(const nlohmann::json& report) {
  // error_handler_t::replace: invalid UTF-8 becomes U+FFFD instead of an exception.
  const std::string dumped = report.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  std::string out;
  out.reserve(dumped.size() + dumped.size() / 16);
  // '<', '>' and '&' can only occur inside JSON strings, where \uXXXX means the same character.
  for (char c : dumped) {
    switch (c) {
      case '<':
        out += "\\u003c";
        break;
      case '>':
        out += "\\u003e";
        break;
      case '&':
        out += "\\u0026";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string RenderReportHtml(const nlohmann::json& report) {
  std::string endpoint = "report";
  if (report.is_object()) {
    auto it = report.find("endpoint");
    if (it != report.end() && it->is_string()) endpoint = it->get<std::string>();
  }
  const std::string title = HtmlEscape(fmt::format("ferry monitor · {}", endpoint));
  const std::string json = JsonForScriptElement(report);

  // One pass over the template, so that nothing substituted is scanned for placeholders again.
  std::string page;
  page.reserve(kReportTemplate.size() + json.size() + title.size());
  size_t pos = 0;
  for (;;) {
    const size_t t = kReportTemplate.find(kTitlePlaceholder, pos);
    const size_t j = kReportTemplate.find(kJsonPlaceholder, pos);
    const size_t next = std::min(t, j);
    if (next == std::string_view::npos) break;
    page.append(kReportTemplate.substr(pos, next - pos));
    if (next == t) {
      page += title;
      pos = next + kTitlePlaceholder.size();
    } else {
      page += json;
      pos = next + kJsonPlaceholder.size();
    }
  }
  page.append(kReportTemplate.substr(pos));
  return page;
}

}  // namespace ferry::monitor
