/* write_default.c — a fresh, commented homeserver.yaml for `pvyhs init`.
 *
 * Only the keys a new admin has to think about are written; everything else
 * keeps its default and is documented in homeserver.example.yaml. The file is
 * created with O_EXCL so an existing config (and the server identity it
 * points at) is never overwritten, and with mode 0600 because admins add
 * secrets such as registration_shared_secret to it later. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config_internal.h"

/* YAML single quotes: everything literal except '' for a quote. Control
 * characters were rejected before, so the value stays on one line. */
static void cfg_put_quoted(FILE *f, const char *s) {
    fputc('\'', f);
    for (; *s; s++) {
        if (*s == '\'') fputc('\'', f);
        fputc(*s, f);
    }
    fputc('\'', f);
}

static bool cfg_printable(const char *s) {
    for (; *s; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f) return false;
    return true;
}

static const char cfg_head[] =
    "# homeserver.yaml - configuration of this pvyhs Matrix homeserver.\n"
    "#\n"
    "# Only the essentials are here. Every other key, with its default and what\n"
    "# it does, is in homeserver.example.yaml, shipped with pvyhs (the file\n"
    "# config/homeserver.example.yaml in its sources). Keys carry Synapse's\n"
    "# names. Relative paths start at the folder holding this file.\n"
    "\n"
    "# The name in your users' IDs (@alice:<server_name>) and room aliases.\n"
    "# It can't be changed once users and rooms exist.\n";

static const char cfg_listeners_text[] =
    "\n"
    "# Where clients and other servers connect. As written, only programs on\n"
    "# this machine can (http://localhost:%d). To serve other machines, either\n"
    "# put a reverse proxy with TLS in front (recommended; then also set\n"
    "# x_forwarded: true below and public_baseurl), or listen on every address:\n"
    "#     bind_addresses: ['::', '0.0.0.0']\n"
    "listeners:\n"
    "  - port: %d\n"
    "    bind_addresses: ['127.0.0.1']\n"
    "    type: http\n"
    "    tls: false\n"
    "    x_forwarded: false\n"
    "    resources:\n"
    "      - names: [client, federation]\n"
    "        compress: false\n"
    "\n"
    "# The URL clients are told to use. Default: http://<server_name>:%d/.\n"
    "#public_baseurl: https://matrix.example.org/\n"
    "\n"
    "# Server state: the built-in PostgreSQL cluster (<data_dir>/pg) and uploaded\n"
    "# media (<data_dir>/media_store). With no `database` section pvyhs runs its\n"
    "# own PostgreSQL; the example file shows how to use an existing one.\n";

static const char cfg_tail[] =
    "\n"
    "# debug, info, warning or error.\n"
    "log_level: info\n"
    "\n"
    "# Whether anyone may create an account. Turning it on also needs\n"
    "# registration_requires_token: true (invite tokens), see the example file.\n"
    "enable_registration: false\n";

static void cfg_put_key(FILE *f, const char *key, const char *value, const char *def) {
    if (value) {
        fprintf(f, "%s: ", key);
        cfg_put_quoted(f, value);
        fputc('\n', f);
    } else {
        fprintf(f, "#%s: %s\n", key, def);
    }
}

static char *cfg_default_text(const char *server_name, const char *data_dir,
                              const char *signing_key_path, int port, size_t *len) {
    char *text = NULL;
    FILE *f = open_memstream(&text, len);
    if (!f) return NULL;
    fputs(cfg_head, f);
    cfg_put_key(f, "server_name", server_name, "");
    fprintf(f, cfg_listeners_text, port, port, port);
    cfg_put_key(f, "data_dir", data_dir, "data");
    fputs("\n# The server's signing key, created on first start. It is the server's\n"
          "# identity to other servers: back it up, never share it.\n", f);
    cfg_put_key(f, "signing_key_path", signing_key_path, "<server_name>.signing.key");
    fputs(cfg_tail, f);
    if (fclose(f) != 0) {
        free(text);
        return NULL;
    }
    return text;
}

static int cfg_write_all(int fd, const char *p, size_t n) {
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static int cfg_check_args(const char *path, const char *server_name, const char *data_dir,
                          const char *signing_key_path, int port, hs_err *err) {
    const char *why = "missing";
    if (!path || !*path) return hs_err_set(err, 400, "M_INVALID_PARAM", "no config path given");
    if (!server_name || !cfg_server_name_valid(server_name, &why))
        return hs_err_set(err, 400, "M_INVALID_PARAM", "invalid server name '%s': %s",
                          server_name ? server_name : "", why);
    if (port < 1 || port > 65535)
        return hs_err_set(err, 400, "M_INVALID_PARAM", "port %d is not between 1 and 65535", port);
    if ((data_dir && (!*data_dir || !cfg_printable(data_dir))) ||
        (signing_key_path && (!*signing_key_path || !cfg_printable(signing_key_path))))
        return hs_err_set(err, 400, "M_INVALID_PARAM",
                          "data_dir and signing_key_path must be non-empty printable paths");
    return 0;
}

int cfg_write_default(const char *path, const char *server_name, const char *data_dir,
                      const char *signing_key_path, int port, hs_err *err) {
    if (cfg_check_args(path, server_name, data_dir, signing_key_path, port, err) < 0) return -EINVAL;
    size_t len = 0;
    char *text = cfg_default_text(server_name, data_dir, signing_key_path, port, &len);
    if (!text) return hs_err_set(err, 500, "M_UNKNOWN", "out of memory"), -ENOMEM;
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int e = errno;
        free(text);
        if (e == EEXIST)
            hs_err_set(err, 409, "M_UNKNOWN", "refusing to overwrite %s: it already exists", path);
        else
            hs_err_set(err, 500, "M_UNKNOWN", "cannot create %s: %s", path, strerror(e));
        return -e;
    }
    int rc = cfg_write_all(fd, text, len) < 0 ? -errno : 0;
    if (close(fd) < 0 && rc == 0) rc = -errno;
    free(text);
    if (rc < 0) {
        /* A half-written config would be refused next time by O_EXCL. */
        unlink(path);
        return hs_err_set(err, 500, "M_UNKNOWN", "cannot write %s: %s", path, strerror(-rc)), rc;
    }
    hs_err_clear(err);
    return 0;
}
