/* routes.c — the media endpoints, authenticated (v1.11) and deprecated ones. */
#include <stdio.h>

#include "media_internal.h"

int media_config(hs_req *r, json_t **out, hs_err *err) {
    (void)err;
    *out = json_pack("{s:I}", "m.upload.size", (json_int_t)r->srv->cfg->max_upload_size);
    return 200;
}

void media_routes(hs_router *rt) {
    /* Authenticated media (spec v1.11). */
    hs_route(rt, "GET", "/_matrix/client/v1/media/config", media_config, HS_AUTH);
    /* HEAD as GET: libmicrohttpd sends the same headers and no body. */
    for (int i = 0; i < 2; i++)
        hs_route(rt, i ? "HEAD" : "GET",
                 "/_matrix/client/v1/media/download/{serverName}/{mediaId}/{fileName?}",
                 media_download, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v1/media/thumbnail/{serverName}/{mediaId}",
             media_thumbnail, HS_AUTH | HS_GUEST);
    hs_route(rt, "GET", "/_matrix/client/v1/media/preview_url", media_preview_url, HS_AUTH);
    /* Uploads keep their /_matrix/media paths; r0 and v1 as Synapse serves them. */
    static const char *const versions[] = {"v3", "r0", "v1"};
    for (int i = 0; i < 3; i++) {
        char path[96];
        snprintf(path, sizeof path, "/_matrix/media/%s/upload", versions[i]);
        hs_route(rt, "POST", path, media_upload, HS_AUTH | HS_STREAM_BODY | HS_REFUSE_SUSPENDED);
    }
    hs_route(rt, "PUT", "/_matrix/media/v3/upload/{serverName}/{mediaId}", media_upload_to,
             HS_AUTH | HS_STREAM_BODY | HS_REFUSE_SUSPENDED);
    hs_route(rt, "POST", "/_matrix/media/v1/create", media_create, HS_AUTH | HS_REFUSE_SUSPENDED);
    /* Federation (v1.11): our media for other servers, X-Matrix signed. */
    hs_route(rt, "GET", "/_matrix/federation/v1/media/download/{mediaId}", media_fed_download,
             HS_FEDERATION);
    hs_route(rt, "GET", "/_matrix/federation/v1/media/thumbnail/{mediaId}", media_fed_thumbnail,
             HS_FEDERATION);
    /* Deprecated (v1.11): download and thumbnail without a token, only for
     * media from before the freeze; config and preview_url need one. */
    for (int i = 0; i < 2; i++) {
        const char *v = versions[i];
        char path[128];
        snprintf(path, sizeof path, "/_matrix/media/%s/download/{serverName}/{mediaId}/{fileName?}", v);
        hs_route(rt, "GET", path, media_download_legacy, 0);
        hs_route(rt, "HEAD", path, media_download_legacy, 0);
        snprintf(path, sizeof path, "/_matrix/media/%s/thumbnail/{serverName}/{mediaId}", v);
        hs_route(rt, "GET", path, media_thumbnail_legacy, 0);
        snprintf(path, sizeof path, "/_matrix/media/%s/config", v);
        hs_route(rt, "GET", path, media_config, HS_AUTH);
        snprintf(path, sizeof path, "/_matrix/media/%s/preview_url", v);
        hs_route(rt, "GET", path, media_preview_url, HS_AUTH);
    }
}
