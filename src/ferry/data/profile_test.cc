#include "ferry/data/profile.h"

#include "gtest/gtest.h"
