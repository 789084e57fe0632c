#include "ferry/data/csv.h"
