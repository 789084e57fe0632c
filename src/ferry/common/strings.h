#pragma once
// Small std::string_view helpers. Debian 12's abseil has its own string_view type, so
// absl::StripAsciiWhitespace and absl::StrSplit do not take std::string_view; these do. Pure
// functions; the views they return point into their argument.

#include <string_view>
#include <vector>

namespace ferry {

// `s` without leading and trailing ASCII whitespace (std::isspace).
std::string_view TrimSpace(std::string_view s);

// `s` cut at every character of `separators`; empty pieces are kept ("a,,b" -> a, "", b).
std::vector<std::string_view> SplitAny(std::string_view s, std::string_view separators);

}  // namespace ferry
