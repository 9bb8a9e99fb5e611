/* pvyhs-thumbnail — image decoding and scaling, in its own process.
 *
 * libvips maps about a hundred shared libraries (codecs, ICU, ...) that would
 * stay resident in the server for a feature used now and then, and image
 * decoders are where hostile input hits hardest: so the server runs this
 * tool per thumbnail, feeds the image on stdin and reads the result.
 *
 *   pvyhs-thumbnail size                 stdout: "W H PAGES"
 *   pvyhs-thumbnail render W H CROP ANIMATED CONTENT_TYPE MAX_PIXELS
 *                                        stdout: "TYPE\n" then the image bytes
 * Exit status: 0 done, 1 the original is small enough, 2 does not decode,
 * 3 too many pixels, 4 scaling failed, 5 bad usage. */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <vips/vips.h>

enum { OK = 0, SMALL = 1, UNDECODABLE = 2, TOO_LARGE = 3, FAILED = 4, USAGE = 5 };

typedef struct thumb_req {
    int width, height;
    bool crop, animated;
} thumb_req;

static bool type_is(const char *t, const char *what) {
    return t && !strncasecmp(t, what, strlen(what)) && (!t[strlen(what)] || t[strlen(what)] == ';');
}

static unsigned char *read_all(size_t *len) {
    size_t cap = 1 << 20, n = 0;
    unsigned char *buf = malloc(cap);
    ssize_t got;
    while (buf && (got = read(0, buf + n, cap - n)) > 0) {
        n += (size_t)got;
        if (n == cap) buf = realloc(buf, cap *= 2);
    }
    *len = n;
    return buf;
}

static int write_all(const void *p, size_t n) {
    const char *c = p;
    while (n) {
        ssize_t w = write(1, c, n);
        if (w <= 0) return -1;
        c += w, n -= (size_t)w;
    }
    return 0;
}

/* libvips crops an animation as one tall strip, so crop each frame here:
 * scale until the frames cover the box (never up), then cut every frame's
 * centre. */
static int crop_animated(const unsigned char *src, size_t len, int w, int h, const thumb_req *t,
                         VipsImage **out) {
    double s = (double)t->width / w > (double)t->height / h ? (double)t->width / w
                                                             : (double)t->height / h;
    int sw = s >= 1 ? w : (int)(w * s + 0.999);
    VipsImage *strip = NULL;
    if (vips_thumbnail_buffer((void *)src, len, &strip, sw, "height", VIPS_MAX_COORD, "size",
                              VIPS_SIZE_DOWN, "option_string", "n=-1", NULL) != 0)
        return -1;
    int ph = vips_image_get_page_height(strip), pages = strip->Ysize / ph;
    int cw = t->width < strip->Xsize ? t->width : strip->Xsize, ch = t->height < ph ? t->height : ph;
    VipsImage **frames = calloc((size_t)pages, sizeof *frames);
    int rc = 0;
    for (int i = 0; i < pages && rc == 0; i++)
        rc = vips_extract_area(strip, &frames[i], (strip->Xsize - cw) / 2, i * ph + (ph - ch) / 2,
                               cw, ch, NULL);
    if (rc == 0) rc = vips_arrayjoin(frames, out, pages, "across", 1, NULL);
    if (rc == 0) vips_image_set_int(*out, "page-height", ch);
    for (int i = 0; i < pages; i++)
        if (frames[i]) g_object_unref(frames[i]);
    free(frames);
    g_object_unref(strip);
    return rc;
}

static int render(const unsigned char *src, size_t len, const char *content_type, long long max_pixels,
                  thumb_req *t) {
    VipsImage *hdr = vips_image_new_from_buffer(src, len, "", NULL);
    if (!hdr) return UNDECODABLE;
    int w = vips_image_get_width(hdr), h = vips_image_get_height(hdr);
    int pages = vips_image_get_n_pages(hdr);
    g_object_unref(hdr);
    bool can_animate = pages > 1 && (type_is(content_type, "image/gif") ||
                                     type_is(content_type, "image/webp"));
    t->animated = t->animated && can_animate;
    if ((long long)w * h * (t->animated ? pages : 1) > max_pixels) return TOO_LARGE;
    /* Never upscale: a small enough original is the thumbnail (unless it is
     * animated and the client did not ask for animation). */
    if (w <= t->width && h <= t->height && (pages == 1 || t->animated)) return SMALL;
    VipsImage *img = NULL;
    int vrc = t->animated && t->crop
                   ? crop_animated(src, len, w, h, t, &img)
                   : vips_thumbnail_buffer((void *)src, len, &img, t->width, "height", t->height,
                                           "size", VIPS_SIZE_DOWN, "crop",
                                           t->crop ? VIPS_INTERESTING_CENTRE : VIPS_INTERESTING_NONE,
                                           "option_string", t->animated ? "n=-1" : "", NULL);
    if (vrc != 0) {
        fprintf(stderr, "%s", vips_error_buffer());
        return FAILED;
    }
    void *buf = NULL;
    size_t n = 0;
    const char *type;
    int rc;
    if (t->animated) {
        type = "image/webp";
        rc = vips_webpsave_buffer(img, &buf, &n, "strip", TRUE, "Q", 80, NULL);
    } else if (type_is(content_type, "image/png") || type_is(content_type, "image/gif")) {
        type = "image/png";
        rc = vips_pngsave_buffer(img, &buf, &n, "strip", TRUE, NULL);
    } else {
        type = "image/jpeg";
        rc = vips_jpegsave_buffer(img, &buf, &n, "strip", TRUE, "Q", 80, NULL);
    }
    g_object_unref(img);
    if (rc != 0) return FAILED;
    rc = printf("%s\n", type) < 0 || fflush(stdout) || write_all(buf, n) ? FAILED : OK;
    g_free(buf);
    return rc;
}

int main(int argc, char **argv) {
    if (argc < 2 || VIPS_INIT(argv[0]) != 0) return USAGE;
    vips_cache_set_max(0); /* every thumbnail is made once: nothing to cache */
    size_t len;
    unsigned char *src = read_all(&len);
    if (!src) return FAILED;
    int rc = USAGE;
    if (!strcmp(argv[1], "size") && argc == 2) {
        VipsImage *img = vips_image_new_from_buffer(src, len, "", NULL);
        rc = img ? OK : UNDECODABLE;
        if (img) printf("%d %d %d\n", vips_image_get_width(img), vips_image_get_height(img),
                        vips_image_get_n_pages(img)), g_object_unref(img);
    } else if (!strcmp(argv[1], "render") && argc == 8) {
        thumb_req t = {atoi(argv[2]), atoi(argv[3]), atoi(argv[4]) != 0, atoi(argv[5]) != 0};
        if (t.width > 0 && t.height > 0) rc = render(src, len, argv[6], atoll(argv[7]), &t);
    }
    free(src);
    return rc;
}
