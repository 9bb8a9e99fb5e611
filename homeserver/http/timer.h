/* timer.h — one thread that runs callbacks at deadlines (long-poll
 * time-outs, typing expiry), so nothing else has to sleep. */
#ifndef HS_TIMER_H
#define HS_TIMER_H

#include <stdbool.h>

typedef struct hs_timer hs_timer;

/* Run cb(arg) once, at or after deadline_ms (epoch ms), on the timer thread. */
hs_timer *hs_timer_add(long long deadline_ms, void (*cb)(void *arg), void *arg);

/* Cancel t and free it. Returns true if cb will not run (nor is running),
 * false if it already ran or is running (then t is freed once it is done). */
bool hs_timer_cancel(hs_timer *t);

#endif
