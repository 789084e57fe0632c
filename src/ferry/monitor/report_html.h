#pragma once
// The self-contained HTML page of a monitor report (report.html): report.json (schema
// "ferry.monitor.report/1", docs/report.md) embedded in the page, plus an inline script that draws
// the charts as SVG when the page opens. The page references nothing outside itself, so it opens
// offline, from the lake or from an e-mail attachment.
//
// Pure functions of their inputs: thread-safe.
//
// Example:
//   nlohmann::json report = BuildReport(...);             // the monitor's report.json
//   FERRY_RETURN_IF_ERROR(WriteFileAtomic(dir + "/report.html", RenderReportHtml(report)));

#include <string>
#include <string_view>

#include "nlohmann/json.hpp"

namespace ferry::monitor {

// The whole page. Never fails: fields the page needs but the report lacks (or holds as null)
// are shown as "–"; strings that are not valid UTF-8 are embedded with U+FFFD in their place.
std::string RenderReportHtml(const nlohmann::json& report);

// `report` serialized for a <script type="application/json"> element: '<', '>' and '&' are
// written as \u003c, \u003e and \u0026, so that no "</script" or "<!--" can end or confuse the
// element; JSON.parse reads back the same values.
std::string JsonForScriptElement(const nlohmann::json& report);

// The text escaped for HTML content or a quoted attribute value (& < > " ').
std::string HtmlEscape(std::string_view text);

}  // namespace ferry::monitor
