/* key_servers.c — trusted_key_servers: the notaries federation asks for
 * other servers' signing keys, in Synapse's format:
 *
 *   trusted_key_servers:
 *     - server_name: notary.example.org
 *       verify_keys: {"ed25519:auto": "<unpadded base64 public key>"}
 *       accept_keys_insecurely: false
 *
 * Unlike Synapse (which asks matrix.org when the key is absent), the default
 * is no notary at all: keys are fetched from each server itself, and no third
 * party learns whom we federate with. */
#include <stdlib.h>
#include <string.h>

#include "../homeserver/core/base64.h"
#include "config_internal.h"

static bool parse_verify_keys(cfg_ctx *x, const cfg_node *v, const char *key, cfg_key_server *ks) {
    char buf[80], ikey[CFG_PATH_MAX];
    if (v->kind != CFG_MAP) {
        cfg_error(x, v->line, key, "expected a mapping of key ID to public key, got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    ks->has_verify_keys = true;
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        const char *id = v->keys[i]->str;
        const cfg_node *val = v->vals[i];
        unsigned char pk[32];
        size_t n = 0;
        cfg_path_key(ikey, sizeof ikey, key, id);
        if (strncmp(id, "ed25519:", 8) || !id[8]) {
            cfg_error(x, v->keys[i]->line, ikey, "unsupported key ID: expected ed25519:<version>");
            ok = false;
        } else if (val->kind != CFG_SCALAR ||
                   hs_b64_decode(val->str, strlen(val->str), pk, sizeof pk, &n, false) < 0 ||
                   n != 32) {
            cfg_error(x, val->line, ikey, "expected the unpadded base64 of a 32-byte ed25519 key");
            ok = false;
        } else if (cfg_strlist_push(&ks->key_ids, id) < 0 ||
                   cfg_strlist_push(&ks->keys, val->str) < 0) {
            cfg_oom(x, val->line, ikey);
            ok = false;
        }
    }
    return ok;
}

static void key_server_free(cfg_key_server *ks) {
    free(ks->server_name);
    cfg_strlist_free(&ks->key_ids);
    cfg_strlist_free(&ks->keys);
}

/* One entry; false (reported) leaves ks to be freed by the caller. */
static bool parse_entry(cfg_ctx *x, const cfg_node *item, const char *key, cfg_key_server *ks) {
    char buf[80], ikey[CFG_PATH_MAX];
    if (item->kind != CFG_MAP) {
        cfg_error(x, item->line, key, "expected a mapping such as {server_name: notary.example.org}, got %s",
                  cfg_node_what(item, buf, sizeof buf));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < item->n; i++) {
        const char *k = item->keys[i]->str;
        const cfg_node *v = item->vals[i];
        cfg_path_key(ikey, sizeof ikey, key, k);
        if (!strcmp(k, "server_name")) {
            const char *why = "";
            ok &= cfg_get_string(x, v, ikey, &ks->server_name);
            if (ks->server_name && !cfg_server_name_valid(ks->server_name, &why)) {
                cfg_error(x, v->line, ikey, "'%s' is not a valid server name: %s", ks->server_name, why);
                ok = false;
            }
        } else if (!strcmp(k, "verify_keys")) {
            if (!cfg_node_is_null(v)) ok &= parse_verify_keys(x, v, ikey, ks);
        } else if (!strcmp(k, "accept_keys_insecurely")) {
            ok &= cfg_get_bool(x, v, ikey, &ks->accept_keys_insecurely);
        } else {
            cfg_warning(x, item->keys[i]->line, ikey, "unknown key");
        }
    }
    if (!ks->server_name) {
        cfg_error(x, item->line, key, "missing required key server_name");
        ok = false;
    }
    return ok;
}

bool cfg_parse_key_servers(cfg_ctx *x, const cfg_node *v, const char *key, int line, void *base) {
    cfg *c = base;
    char buf[80], ikey[CFG_PATH_MAX];
    (void)line;
    if (!v) return true; /* absent or null: no notary */
    if (v->kind != CFG_SEQ) {
        cfg_error(x, v->line, key, "expected a list such as [{server_name: notary.example.org}], got %s",
                  cfg_node_what(v, buf, sizeof buf));
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < v->n; i++) {
        cfg_key_server ks = {0};
        cfg_path_index(ikey, sizeof ikey, key, i);
        if (!parse_entry(x, v->vals[i], ikey, &ks)) {
            key_server_free(&ks);
            ok = false;
            continue;
        }
        cfg_key_server *nv = realloc(c->trusted_key_servers,
                                     (c->n_trusted_key_servers + 1) * sizeof *nv);
        if (!nv) {
            key_server_free(&ks);
            cfg_oom(x, v->vals[i]->line, ikey);
            return false;
        }
        c->trusted_key_servers = nv;
        c->trusted_key_servers[c->n_trusted_key_servers++] = ks;
    }
    return ok;
}

void cfg_check_key_servers(cfg_ctx *x, const cfg *c, const cfg_node *root) {
    if (c->federation_verify_certificates) return;
    const cfg_node *list = cfg_map_get(root, "trusted_key_servers");
    for (size_t i = 0; i < c->n_trusted_key_servers; i++) {
        const cfg_key_server *ks = &c->trusted_key_servers[i];
        if ((ks->has_verify_keys && ks->key_ids.n) || ks->accept_keys_insecurely) continue;
        char ikey[CFG_PATH_MAX];
        cfg_path_index(ikey, sizeof ikey, "trusted_key_servers", i);
        cfg_error(x, list && i < list->n ? list->vals[i]->line : root->line, ikey,
                  "with federation_verify_certificates: false, a notary's answers can only be "
                  "trusted through its verify_keys; give them (or accept_keys_insecurely: true if "
                  "you are sure)");
    }
}

void cfg_key_servers_free(cfg *c) {
    for (size_t i = 0; i < c->n_trusted_key_servers; i++) key_server_free(&c->trusted_key_servers[i]);
    free(c->trusted_key_servers);
    c->trusted_key_servers = NULL;
    c->n_trusted_key_servers = 0;
}
