#pragma once
// Identifiers. Run ids sort by creation time and are unique across processes:
// "r20261127-121700-3f9a1c" (UTC time of creation, then 24 random bits).

#include <string>

#include "ferry/common/clock.h"

namespace ferry {

std::string NewRunId(const Clock& clock);

// Valid names of pipelines, tasks and templates: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, no "..".
bool IsValidName(std::string_view name);

}  // namespace ferry
