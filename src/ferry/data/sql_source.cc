#include "ferry/data/sql_source.h"
