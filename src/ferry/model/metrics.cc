#include "ferry/model/metrics.h"
