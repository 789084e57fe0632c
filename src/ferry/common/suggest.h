#pragma once
// "Did you mean" hints and name lists for messages about unknown keys and names. Stateless and
// thread-safe.

#include <string>
#include <string_view>
#include <vector>

namespace ferry {

// The candidate closest to `word` (ignoring case) when it is close enough to be a typo of it,
// else "". Ties go to the earlier candidate.
std::string DidYouMean(std::string_view word, const std::vector<std::string>& candidates);

std::string JoinNames(const std::vector<std::string>& names);  // "a, b, c"

// "; did you mean 'x'?" when a candidate is close, else "; expected one of: a, b, c".
std::string UnknownKeyHint(std::string_view key, const std::vector<std::string>& candidates);

}  // namespace ferry
