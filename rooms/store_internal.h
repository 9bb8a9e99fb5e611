/* store_internal.h — shared between the rooms/store_*.c files only. */
#ifndef ROOM_STORE_INTERNAL_H
#define ROOM_STORE_INTERNAL_H

#include "store.h"

/* After an accepted event: move the forward extremities past it and bring
 * the current state (group and table) up to date (extends_current: see
 * room_persist_item). */
int room_store_advance(db_conn *c, const room_event *ev, long long before, long long after,
                       bool extends_current, hs_err *err);

#endif
