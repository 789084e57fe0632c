#pragma once
// The small templating language of pipeline files. A string may contain `{{ expr }}` where expr
// is one of:
//   params.NAME      a pipeline parameter (resolved once at run start)
//   run.id           the run id
//   run.date         the run's start date, UTC, YYYY-MM-DD
//   run.ts           the run's start time, UTC, ISO 8601 (2026-11-27T12:17:00Z)
//   run.pipeline     the pipeline's name
//   today            alias of run.date
// Whitespace inside the braces is optional. `{{{{` is not special: write a literal "{{" as
// "{{ '{{' }}". Anything else is an error that names the offset of the "{{".
// Stateless and thread-safe.

#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace ferry::config {

struct TemplateRef {
  size_t offset = 0;  // byte offset of "{{" in the text
  std::string expr;   // trimmed, e.g. "params.since"
};

// Every `{{ ... }}` in `text`. InvalidArgument (with the offset in the message) for an unclosed
// "{{".
absl::StatusOr<std::vector<TemplateRef>> FindTemplateRefs(std::string_view text);

// The names a template may use: "run.id", "run.date", "run.ts", "run.pipeline", "today", and
// "params.<name>" for each declared parameter.
struct TemplateContext {
  nlohmann::json params = nlohmann::json::object();  // name -> scalar
  std::map<std::string, std::string> vars;           // "run.id" -> "r2026...", "today" -> ...
};

// Checks that `expr` names something the context could provide; `declared_params` are the
// parameter names. Returns an error message (empty when fine).
std::string CheckTemplateExpr(std::string_view expr,
                              const std::vector<std::string>& declared_params);

// Replaces every reference with its value (numbers and booleans as JSON prints them).
// InvalidArgument naming the expression and its offset when something is unknown.
absl::StatusOr<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx);

}  // namespace ferry::config
