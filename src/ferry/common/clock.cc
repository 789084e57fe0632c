#include "ferry/common/clock.h"

namespace ferry {

SystemClock& SystemClock::Get() {
  static SystemClock* clock = new SystemClock();
  return *clock;
}

}  // namespace ferry
