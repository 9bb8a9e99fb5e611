/* routes.c — the list of Client-Server API areas. */
#include "client.h"
#include "server_notices.h"

void client_routes(hs_router *rt) {
    client_versions_routes(rt);
    client_wellknown_routes(rt);
    client_account_routes(rt);
    client_login_routes(rt);
    client_register_routes(rt);
    client_devices_routes(rt);
    client_profile_routes(rt);
    client_capabilities_routes(rt);
    client_voip_routes(rt);
    client_user_directory_routes(rt);
    client_room_create_routes(rt);
    client_room_membership_routes(rt);
    client_room_events_routes(rt);
    client_room_initial_sync_routes(rt);
    client_peek_events_routes(rt);
    client_initial_sync_routes(rt);
    client_sync_routes(rt);
    client_messages_routes(rt);
    client_aliases_routes(rt);
    client_sliding_sync_routes(rt);
    client_pushrules_routes(rt);
    client_pushers_routes(rt);
    client_notifications_routes(rt);
    client_e2ee_routes(rt);
    client_account_data_routes(rt);
    client_tags_routes(rt);
    client_filters_routes(rt);
    client_receipts_routes(rt);
    client_typing_routes(rt);
    client_presence_routes(rt);
    client_channels_routes(rt);
    client_relations_routes(rt);
    client_search_routes(rt);
    client_reports_routes(rt);
    client_whois_routes(rt);
    client_mutual_rooms_routes(rt);
    client_timestamp_routes(rt);
    client_room_upgrade_routes(rt);
    client_account_moderation_routes(rt);
    client_server_notices_routes(rt);
}
