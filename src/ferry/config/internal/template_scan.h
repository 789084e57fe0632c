#pragma once
// The scanner behind FindTemplateRefs, exposed inside config/ so that validation can place an
// unclosed "{{" at its own file:line:column instead of only naming its offset. Thread-safe.

#include <optional>
#include <string_view>
#include <vector>

#include "ferry/config/templating.h"

namespace ferry::config::internal {

struct TemplateScan {
  std::vector<TemplateRef> refs;   // every closed reference before `unclosed`
  std::optional<size_t> unclosed;  // offset of a "{{" with no "}}" after it
};

TemplateScan ScanTemplateRefs(std::string_view text);

// The message for an unclosed "{{", without its offset.
inline constexpr std::string_view kUnclosedMessage =
    "unclosed '{{'; close it with '}}', or write a literal '{{' as {{ '{{' }}";

}  // namespace ferry::config::internal
