/* clock.h — wall-clock time as Matrix uses it. */
#ifndef HS_CLOCK_H
#define HS_CLOCK_H

/* Milliseconds since the Unix epoch. */
long long hs_now_ms(void);

#endif
