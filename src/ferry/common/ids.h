#pragma once
// Identifiers. Run ids sort by creation time and are unique across processes:
// "r20261127-121700-3f9a1c" (UTC time of creation, then 24 random bits).

#include <string>

#include "ferry/common/clock.h"

namespace ferry {

std::string NewRunId(const Clock& clock);

// Valid names of pipelines, tasks and templates: [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}, no "..".
bool IsValidName(std::string_view name);

// A UUIDv7 (RFC 9562) in canonical form, "0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b": 48-bit Unix ms
// timestamp from `clock`, version 7, variant 10, 12-bit rand_a used as a counter so that ids
// made by this process are strictly increasing (also within one ms and across threads; a clock
// that goes back does not break the order), 62 random bits from a per-thread generator seeded
// by the OS CSPRNG. Thread-safe. Time-ordered, unique, not secret.
std::string NewUuidV7(const Clock& clock);

// True when `s` is a canonical UUID: 8-4-4-4-12 hex digits (either case), any version.
bool IsUuid(std::string_view s);

}  // namespace ferry
