/* client.h — the Client-Server API, one file per area. */
#ifndef CLIENT_CLIENT_H
#define CLIENT_CLIENT_H

#include "homeserver/http/http.h"

/* Register every Client-Server API route (and /.well-known, /health). */
void client_routes(hs_router *rt);

/* Per-area registration, called by client_routes. */
void client_versions_routes(hs_router *rt);
void client_wellknown_routes(hs_router *rt);
void client_account_routes(hs_router *rt);
void client_login_routes(hs_router *rt);
void client_register_routes(hs_router *rt);
void client_devices_routes(hs_router *rt);
void client_profile_routes(hs_router *rt);
void client_capabilities_routes(hs_router *rt);
void client_voip_routes(hs_router *rt);
void client_user_directory_routes(hs_router *rt);
void client_room_create_routes(hs_router *rt);
void client_room_membership_routes(hs_router *rt);
void client_room_events_routes(hs_router *rt);
void client_room_initial_sync_routes(hs_router *rt);
void client_peek_events_routes(hs_router *rt);
void client_initial_sync_routes(hs_router *rt);
void client_sync_routes(hs_router *rt);
void client_messages_routes(hs_router *rt);
void client_aliases_routes(hs_router *rt);
void client_sliding_sync_routes(hs_router *rt);
void client_pushrules_routes(hs_router *rt);
void client_pushers_routes(hs_router *rt);
void client_notifications_routes(hs_router *rt);
void client_e2ee_routes(hs_router *rt);
void client_account_data_routes(hs_router *rt);
void client_tags_routes(hs_router *rt);
void client_filters_routes(hs_router *rt);
void client_receipts_routes(hs_router *rt);
void client_typing_routes(hs_router *rt);
void client_presence_routes(hs_router *rt);
void client_channels_routes(hs_router *rt); /* directory, summary, hierarchy */
void client_relations_routes(hs_router *rt);
void client_search_routes(hs_router *rt);
void client_reports_routes(hs_router *rt);
void client_whois_routes(hs_router *rt);
void client_mutual_rooms_routes(hs_router *rt);
void client_timestamp_routes(hs_router *rt);
void client_room_upgrade_routes(hs_router *rt);
void client_account_moderation_routes(hs_router *rt);

#endif
