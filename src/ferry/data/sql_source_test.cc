#include "ferry/data/sql_source.h"

#include "gtest/gtest.h"
