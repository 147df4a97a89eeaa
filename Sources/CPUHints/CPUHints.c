// The target's functions are `static inline` in include/CPUHints.h; SwiftPM needs one source file.
#include "CPUHints.h"
