#include "ferry/data/csv.h"

#include "gtest/gtest.h"
