#include "ferry/data/profile.h"
