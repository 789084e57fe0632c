#include "ferry/data/transform.h"
