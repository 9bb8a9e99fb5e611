/* media_internal.h — what the files of media/ share and nothing else includes. */
#ifndef MEDIA_MEDIA_INTERNAL_H
#define MEDIA_MEDIA_INTERNAL_H

#include <sodium.h>
#include <stdbool.h>
#include <sys/types.h>

#include "media.h"

#define MEDIA_CHUNK (64 * 1024)   /* plaintext bytes per sealed message in a file */
#define MEDIA_ADDR_LEN 32         /* a file's content address (HMAC-SHA-256) */
#define MEDIA_KEY_LEN crypto_secretstream_xchacha20poly1305_KEYBYTES
#define MEDIA_WRAPPED_LEN                                                       \
    (crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + MEDIA_KEY_LEN +            \
     crypto_aead_xchacha20poly1305_ietf_ABYTES)
#define MEDIA_ID_LEN 24

/* ---- keys.c: the master key and what derives from it ---- */

typedef struct media_keys {
    unsigned char wrap[32];  /* seals file keys and upload names (AEAD) */
    unsigned char addr[32];  /* keys the content address */
    unsigned char check[32]; /* the value the database keeps to recognise the key */
} media_keys;

/* The process's keys, loading them on first use (media_start). NULL with err
 * (500) when the key is missing or wrong. */
const media_keys *media_keys_get(hs_server *srv, hs_err *err);

/* Master key bytes from $PVYHS_MEDIA_KEY, else from path; *missing when
 * neither exists. 0, or -1 with err. */
int media_master_load(const char *path, unsigned char master[32], bool *missing, hs_err *err);
void media_keys_derive(const unsigned char master[32], media_keys *k);

/* Seal a file key, bound to ad (its address), into MEDIA_WRAPPED_LEN bytes. */
void media_wrap_key(const media_keys *k, const unsigned char key[MEDIA_KEY_LEN],
                    const unsigned char *ad, size_t adlen, unsigned char *out);
int media_unwrap_key(const media_keys *k, const unsigned char *in, size_t inlen,
                     const unsigned char *ad, size_t adlen, unsigned char key[MEDIA_KEY_LEN]);
/* Seal / open a short string (a file name) bound to ad. malloc'd results;
 * open returns NULL if it does not authenticate. */
unsigned char *media_seal_str(const media_keys *k, const char *s, const char *ad, size_t *outlen);
char *media_open_str(const media_keys *k, const unsigned char *in, size_t inlen, const char *ad);

/* ---- blob.c: encrypted files in the store ---- */

typedef struct media_writer media_writer;
/* Start a new file in <store>/tmp under a fresh random key. */
media_writer *media_writer_new(const char *store, const media_keys *k, hs_err *err);
int media_writer_write(media_writer *w, const void *data, size_t n, hs_err *err);
/* Seal the last message and flush the file to disk. */
int media_writer_finish(media_writer *w, hs_err *err);
long long media_writer_length(const media_writer *w);
const unsigned char *media_writer_address(const media_writer *w); /* after finish */
const unsigned char *media_writer_key(const media_writer *w);
/* Move the finished file to its address in the store (idempotent). */
int media_writer_install(media_writer *w, const char *store, hs_err *err);
/* Close; removes the temporary file unless it was installed. */
void media_writer_free(media_writer *w);

typedef struct media_reader media_reader;
media_reader *media_reader_open(const char *store, const unsigned char *address,
                                const unsigned char key[MEDIA_KEY_LEN], hs_err *err);
/* Up to n bytes of plaintext: > 0, 0 at the verified end, -1 when the file
 * is damaged, cut short or was tampered with. */
ssize_t media_reader_read(media_reader *r, void *out, size_t n);
/* Before the first read: position r at plaintext offset (at most the
 * length), skipping the messages before it unread when fast-forwarding works
 * (media_reader_fast_seek), else reading through them. 0, or -1 when the file
 * is damaged or cut short. */
int media_reader_seek(media_reader *r, long long offset);
bool media_reader_fast_seek(void);
void media_reader_free(media_reader *r);
/* <store>/blobs/ab/cd/abcd… (malloc'd). */
char *media_blob_path(const char *store, const unsigned char *address);
/* The whole plaintext of a file into memory (thumbnails), at most max bytes. */
unsigned char *media_blob_slurp(const char *store, const unsigned char *address,
                                const unsigned char key[MEDIA_KEY_LEN], size_t len, hs_err *err);

/* ---- store.c: the database rows ---- */

typedef struct media_info {
    char *origin, *media_id;
    bool remote, authenticated, quarantined, uploaded;
    char *user_id;       /* local uploader */
    char *content_type;  /* NULL: unknown */
    char *upload_name;   /* opened; NULL: none */
    long long length, created_ts;
    unsigned char address[MEDIA_ADDR_LEN];
    unsigned char key[MEDIA_KEY_LEN]; /* unwrapped, when uploaded */
} media_info;

/* 1 and *out filled, 0 if there is no such media, -1 with err. Opens the
 * file key and name when keys is given. */
int media_lookup(db_conn *c, const media_keys *keys, const char *origin, const char *media_id,
                 media_info *out, hs_err *err);
void media_info_clear(media_info *m);
void media_touch(db_conn *c, const char *origin, const char *media_id);

/* Record a finished file (w) in the database, installing it in the store if
 * its content is new, and point the media row at it: a new row (create) or a
 * row from POST /create (update). 0, or -1 with err (409 when another upload
 * got there first). */
typedef struct media_new {
    const char *origin, *media_id, *user_id, *content_type, *upload_name;
    bool remote, authenticated, update;
} media_new;
int media_store_file(hs_server *srv, const media_keys *k, media_writer *w, const media_new *n,
                     hs_err *err);

/* Bytes user_id uploaded since since_ms (for media_upload_limits). */
long long media_user_uploaded(db_conn *c, const char *user_id, long long since_ms, hs_err *err);
/* -1 with 403 M_FORBIDDEN if adding `more` bytes would break a limit. */
int media_check_quota(hs_server *srv, const char *user_id, long long more, hs_err *err);

/* ---- url_blacklist.c: url_preview_url_blacklist ---- */

/* Split url into its urlsplit components (malloc'd; NULL where urlsplit
 * gives None). 0, or -1 for what urlsplit refuses (a bad port). */
int media_url_split(const char *url, char *parts[CFG_URL_NPARTS]);
void media_url_parts_free(char *parts[CFG_URL_NPARTS]);
/* 1 if an entry of the blacklist matches url, 0 if none, -1 if url does
 * not parse. */
int media_url_blocked(const cfg *cf, const char *url);

/* ---- preview_cache.c: previews kept for an hour, sealed ---- */

/* The preview of url fetched within the hour (a JSON object), or NULL. */
json_t *media_preview_cached(hs_server *srv, const media_keys *k, const char *url, long long now);
/* Keep og as url's preview until now + an hour; drops expired ones. */
void media_preview_remember(hs_server *srv, const media_keys *k, const char *url, const json_t *og,
                            long long now);

/* ---- util.c ---- */

bool media_id_valid(const char *id);
void media_random_id(char out[MEDIA_ID_LEN + 1]);
/* Whether Content-Disposition may say inline for this type (the spec's list). */
bool media_inline_type(const char *content_type);
/* The Content-Disposition value: inline/attachment plus a filename (RFC 6266). */
char *media_disposition(bool inline_ok, const char *filename);
/* The headers every media response carries (CSP sandbox, nosniff, CORP). */
void media_safe_headers(struct MHD_Response *resp);
/* A Range header against a file of size bytes (RFC 9110 §14): 1 with the
 * inclusive [*first, *last] for one satisfiable range; 0 when the header is
 * absent, invalid, in another unit or asks for several ranges (the whole file
 * is the answer); -1 when it cannot be satisfied (416). */
int media_parse_range(const char *h, long long size, long long *first, long long *last);
/* Parse an "mxc://server/id" or "server/id" into its parts (malloc'd). */
int media_parse_mxc(const char *s, char **origin, char **media_id, hs_err *err);
/* Whether origin is this server. */
bool media_is_local(hs_server *srv, const char *origin);
/* mkdir -p, every folder it makes private to us. */
int media_mkdirs(const char *path);

/* ---- download.c / thumbnail.c ---- */

/* Who asks: a client with a token, a client on the deprecated
 * unauthenticated endpoints (only media from before the freeze), or another
 * server (answered as multipart/mixed). */
enum media_via { MEDIA_VIA_CLIENT, MEDIA_VIA_LEGACY, MEDIA_VIA_FEDERATION };

/* Find server/id for a download or thumbnail request: 1 with *m when it can
 * be served now, 0 when the request was parked to wait for an upload, -1
 * with err (404, 504 M_NOT_YET_UPLOADED …). */
int media_find_for_request(hs_req *r, const media_keys *k, enum media_via via, const char *server,
                           const char *id, media_info *m, hs_err *err);
/* Answer r with the file (streamed, decrypted as it goes), as the body or,
 * for federation, as the second part of a multipart/mixed body. */
/* With ranges (plain bodies only), a Range header is honoured: 206 with one
 * range, read from the message that holds it, or 416. */
int media_respond_file(hs_req *r, const unsigned char *address, const unsigned char *key,
                       long long length, const char *content_type, const char *disposition,
                       bool multipart, bool ranges, hs_err *err);
/* The multipart/mixed frame around a federation answer's bytes: the
 * metadata part and the headers of the content part (prefix), the closing
 * boundary (suffix), and the response's Content-Type. malloc'd. */
void media_multipart_frame(const char *content_type, const char *disposition, char **prefix,
                           char **suffix, char **outer_type);

int media_download(hs_req *r, json_t **out, hs_err *err);
int media_download_legacy(hs_req *r, json_t **out, hs_err *err);
int media_thumbnail(hs_req *r, json_t **out, hs_err *err);
int media_thumbnail_legacy(hs_req *r, json_t **out, hs_err *err);
int media_fed_download(hs_req *r, json_t **out, hs_err *err);
int media_fed_thumbnail(hs_req *r, json_t **out, hs_err *err);
int media_upload(hs_req *r, json_t **out, hs_err *err);
int media_upload_to(hs_req *r, json_t **out, hs_err *err);
int media_create(hs_req *r, json_t **out, hs_err *err);
int media_config(hs_req *r, json_t **out, hs_err *err);
int media_preview_url(hs_req *r, json_t **out, hs_err *err);
/* thumbnail.c: width and height of an image (header only). 0, or -1. */
int media_image_size(const void *buf, size_t len, int *w, int *h);

/* remote.c: fetch origin's media id over federation into the store and
 * the database (a remote media row). 0, or -1 with err (404, 502 …). */
int media_fetch_remote(hs_server *srv, const media_keys *k, const char *origin, const char *id,
                       hs_err *err);

/* retention.c: run media_retention's purge if it is due (cheap otherwise). */
void media_retention_tick(hs_server *srv);
/* Remove the stored files of blobs no row uses any more (inside c's
 * transaction: renames them aside; media_gc_commit unlinks them after). */
typedef struct media_gc {
    char **paths;
    size_t n, cap;
} media_gc;
int media_gc_unused(db_conn *c, const cfg *cf, media_gc *gc, hs_err *err);
void media_gc_finish(media_gc *gc, bool committed);

#endif
