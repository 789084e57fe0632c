#include "ferry/config/templating.h"

#include <algorithm>
#include <cctype>
#include <optional>

#include "ferry/common/status.h"
#include "ferry/common/strings.h"
#include "ferry/common/suggest.h"
#include "ferry/config/internal/template_scan.h"
#include "fmt/format.h"

namespace ferry::config {
namespace {

constexpr std::string_view kLiteralBraces = "'{{'";
constexpr std::string_view kParamsPrefix = "params.";
constexpr std::string_view kUsage =
    "use params.NAME, run.id, run.date, run.ts, run.pipeline or today";

bool IsRunVar(std::string_view expr) {
  return expr == "run.id" || expr == "run.date" || expr == "run.ts" || expr == "run.pipeline" ||
         expr == "today";
}

bool IsParam(std::string_view expr) {
  return expr.substr(0, kParamsPrefix.size()) == kParamsPrefix;
}

// The text a reference renders to, or nullopt when the context has no value for it. Strings are
// inserted raw, other JSON values as JSON prints them (10, 0.5, true).
std::optional<std::string> ValueOf(const std::string& expr, const TemplateContext& ctx) {
  if (expr == kLiteralBraces) return "{{";
  if (IsParam(expr)) {
    if (!ctx.params.is_object()) return std::nullopt;
    auto it = ctx.params.find(expr.substr(kParamsPrefix.size()));
    if (it == ctx.params.end()) return std::nullopt;
    return it->is_string() ? it->get<std::string>() : it->dump();
  }
  if (!IsRunVar(expr)) return std::nullopt;
  auto it = ctx.vars.find(expr);
  // `today` is an alias, so a context that only sets run.date serves both.
  if (it == ctx.vars.end() && expr == "today") it = ctx.vars.find("run.date");
  if (it == ctx.vars.end()) return std::nullopt;
  return it->second;
}

}  // namespace

namespace internal {

TemplateScan ScanTemplateRefs(std::string_view text) {
  TemplateScan scan;
  size_t pos = 0;
  while ((pos = text.find("{{", pos)) != std::string_view::npos) {
    // The first "}}" closes the reference, which is what makes {{ '{{' }} work: the inner "{{"
    // lies inside the expression and is never seen as an opening.
    size_t close = text.find("}}", pos + 2);
    if (close == std::string_view::npos) {
      scan.unclosed = pos;
      break;
    }
    scan.refs.push_back(
        TemplateRef{pos, std::string(TrimSpace(text.substr(pos + 2, close - pos - 2)))});
    pos = close + 2;
  }
  return scan;
}

}  // namespace internal

absl::StatusOr<std::vector<TemplateRef>> FindTemplateRefs(std::string_view text) {
  internal::TemplateScan scan = internal::ScanTemplateRefs(text);
  if (scan.unclosed) {
    return absl::InvalidArgumentError(
        fmt::format("at offset {}: {}", *scan.unclosed, internal::kUnclosedMessage));
  }
  return std::move(scan.refs);
}

std::string CheckTemplateExpr(std::string_view expr,
                              const std::vector<std::string>& declared_params) {
  if (expr == kLiteralBraces || IsRunVar(expr)) return "";
  if (expr.empty()) return fmt::format("empty template expression {{{{ }}}}; {}", kUsage);
  if (IsParam(expr)) {
    std::string name(expr.substr(kParamsPrefix.size()));
    if (std::find(declared_params.begin(), declared_params.end(), name) != declared_params.end()) {
      return "";
    }
    std::string msg = fmt::format("unknown parameter '{}' in {{{{ {} }}}}", name, expr);
    if (declared_params.empty()) {
      return msg + "; no parameters are declared (add them under params:)";
    }
    std::string suggestion = DidYouMean(name, declared_params);
    if (!suggestion.empty()) return fmt::format("{}; did you mean '{}'?", msg, suggestion);
    return fmt::format("{}; declared parameters: {}", msg, JoinNames(declared_params));
  }
  if (expr.substr(0, 4) == "run.") {
    return fmt::format(
        "unknown run variable '{}' in {{{{ {} }}}}; use run.id, run.date, run.ts or run.pipeline",
        expr, expr);
  }
  return fmt::format(
      "unknown template expression '{}' in {{{{ {} }}}}; {} (a literal '{{{{' is "
      "written {{{{ '{{{{' }}}})",
      expr, expr, kUsage);
}

absl::StatusOr<std::string> RenderTemplate(std::string_view text, const TemplateContext& ctx) {
  FERRY_ASSIGN_OR_RETURN(std::vector<TemplateRef> refs, FindTemplateRefs(text));
  std::string out;
  size_t done = 0;
  for (const TemplateRef& ref : refs) {
    out.append(text.substr(done, ref.offset - done));
    // A reference ends at the first "}}" after its "{{" (see ScanTemplateRefs).
    done = text.find("}}", ref.offset + 2) + 2;
    std::optional<std::string> value = ValueOf(ref.expr, ctx);
    if (!value) {
      std::vector<std::string> names;
      if (ctx.params.is_object()) {
        for (const auto& [name, v] : ctx.params.items()) names.push_back(name);
      }
      std::string why = CheckTemplateExpr(ref.expr, names);
      if (why.empty()) why = fmt::format("no value for '{}' in this context", ref.expr);
      return absl::InvalidArgumentError(fmt::format("at offset {}: {}", ref.offset, why));
    }
    out += *value;
  }
  out.append(text.substr(done));
  return out;
}

}  // namespace ferry::config
