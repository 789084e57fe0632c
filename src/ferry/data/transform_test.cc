#include "ferry/data/transform.h"

#include "gtest/gtest.h"
