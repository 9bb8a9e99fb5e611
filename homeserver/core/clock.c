/* clock.c — wall-clock milliseconds. */
#include "clock.h"

#include <time.h>

long long hs_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
