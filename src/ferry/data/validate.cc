#include "ferry/data/validate.h"
