/* voip.h — TURN credentials (voip.c). */
#ifndef CLIENT_VOIP_H
#define CLIENT_VOIP_H

/* coturn's use-auth-secret password for username: padded base64 of
 * HMAC-SHA1(secret, username), 28 characters and a NUL. */
void client_turn_password(const char *secret, const char *username, char out[29]);

#endif
