#include "ferry/data/validate.h"

#include "gtest/gtest.h"
