// render_report: report.json -> report.html, the page of RenderReportHtml. Used by the e2e test
// of the page (tests/e2e/test_report_html.py) and by hand to re-render a stored report:
//   render_report monitoring/churn/<id>/report.json /tmp/report.html
// Exit codes: 0 written, 1 the input cannot be read or parsed or the output cannot be written,
// 2 usage.

#include <cstdio>
#include <string>

#include "ferry/common/fs.h"
#include "ferry/common/status.h"
#include "ferry/monitor/report_html.h"
#include "fmt/format.h"
#include "nlohmann/json.hpp"

int main(int argc, char** argv) {
  if (argc != 3) {
    fmt::print(stderr, "usage: render_report REPORT_JSON OUTPUT_HTML\n");
    return 2;
  }
  const std::string in = argv[1];
  const std::string out = argv[2];
  absl::StatusOr<std::string> text = ferry::ReadFile(in);
  if (!text.ok()) {
    fmt::print(stderr, "render_report: error: {}\n", text.status().message());
    return 1;
  }
  nlohmann::json report = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (report.is_discarded()) {
    fmt::print(stderr,
               "render_report: error: {} is not valid JSON; pass the report.json a monitor run "
               "wrote\n",
               in);
    return 1;
  }
  absl::Status written =
      ferry::WriteFileAtomic(out, ferry::monitor::RenderReportHtml(report), /*durable=*/false);
  if (!written.ok()) {
    fmt::print(stderr, "render_report: error: {}\n", written.message());
    return 1;
  }
  return 0;
}
