/* SPDX-License-Identifier: Apache-2.0 */
/* The local image store (docs/images.md): KubeVirt names OCI images (containerDisk.image,
 * kernelBoot.container.image); no registry is reached, an image is a directory of the store named by its
 * normalised reference, <store>/<registry>/<repository>:<tag> or <store>/<registry>/<repository>@sha256:<hex>,
 * holding what the image's filesystem would: disk/<one file> for a containerDisk, the kernel and initrd at
 * the paths a manifest names inside it (kernelPath, initrdPath). Nothing outside the store is reachable from
 * a reference or a path inside an image: the grammar allows no "..", and every component below the store
 * is opened with O_NOFOLLOW, so a symlink anywhere in an image is refused. */
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "launcher/launcher-priv.h"

/* error paths are bounded buffers; a truncated path in a message is harmless */
#pragma GCC diagnostic ignored "-Wformat-truncation"

static bool lower_alnum(char c) {
        return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

/* A repository path component: [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)* */
static bool valid_component(const char *s, size_t n) {
        if (n == 0 || !lower_alnum(s[0]) || !lower_alnum(s[n - 1]))
                return false;
        for (size_t i = 0; i < n; i++) {
                if (lower_alnum(s[i]) || s[i] == '-')
                        continue;
                if (s[i] == '.' && lower_alnum(s[i + 1]))
                        continue;
                if (s[i] == '_' && (lower_alnum(s[i + 1]) || (s[i + 1] == '_' && lower_alnum(s[i + 2])))) {
                        i += s[i + 1] == '_';
                        continue;
                }
                return false;
        }
        return true;
}

/* A registry host: letters, digits, '-' and '.' (no "..", not starting or ending with '.'), optional :port. */
static bool valid_domain(const char *s, size_t n) {
        const char *colon = memchr(s, ':', n);
        size_t host = colon ? (size_t) (colon - s) : n;
        if (host == 0 || s[0] == '.' || s[0] == '-' || s[host - 1] == '.')
                return false;
        for (size_t i = 0; i < host; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '-' || (s[i] == '.' && s[i + 1] != '.')))
                        return false;
        if (colon) {
                size_t p = n - host - 1;
                if (p == 0 || p > 5 || strspn(colon + 1, "0123456789") < p)
                        return false;
        }
        return true;
}

static bool valid_tag(const char *s) {
        size_t n = strlen(s);
        if (n == 0 || n > 128 || !(isalnum((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 0; i < n; i++)
                if (!(isalnum((unsigned char) s[i]) || s[i] == '_' || s[i] == '.' || s[i] == '-'))
                        return false;
        return true;
}

int launch_image_ref_parse(const char *ref, LaunchImageRef *ret, KvErr *e) {
        LaunchImageRef r = {};
        char buf[512];
        if (!ref || !*ref)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "an image reference must not be empty");
        if (ref[0] == '/' || strstr(ref, ".."))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "'%.128s' is a host path, not an image reference (registry/repository:tag or "
                                 "@sha256:digest, resolved in the image store)",
                                 ref);
        if (strlen(ref) >= sizeof buf)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image reference '%.64s...' is too long", ref);
        snprintf(buf, sizeof buf, "%s", ref);
        char *at = strchr(buf, '@');
        if (at) {
                *at = '\0';
                const char *d = at + 1;
                if (strncmp(d, "sha256:", 7) != 0 || strlen(d + 7) != 64 || strspn(d + 7, "0123456789abcdef") != 64)
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "image reference '%.128s': the digest must be sha256: and 64 lowercase hex digits",
                                         ref);
                snprintf(r.digest, sizeof r.digest, "%s", d);
        }
        /* a tag is after the last ':' that follows the last '/' (a registry's :port comes before a '/') */
        char *slash = strrchr(buf, '/'), *colon = strrchr(slash ? slash : buf, ':');
        if (colon) {
                *colon = '\0';
                if (!valid_tag(colon + 1))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "image reference '%.128s': invalid tag '%.64s' (letters, digits, '_', '.', '-', "
                                         "at most 128)",
                                         ref, colon + 1);
                if (!r.digest[0])
                        snprintf(r.tag, sizeof r.tag, "%s", colon + 1);
        } else if (!r.digest[0])
                snprintf(r.tag, sizeof r.tag, "latest");

        /* the registry: a first component with a '.' or a ':', or localhost; else docker.io (library/ for one name) */
        const char *path = buf, *first_end = strchr(buf, '/');
        char domain[256] = "docker.io";
        size_t first = first_end ? (size_t) (first_end - buf) : 0;
        bool localhost = first == 9 && strncmp(buf, "localhost", 9) == 0;
        if (first_end && (memchr(buf, '.', first) || memchr(buf, ':', first) || localhost)) {
                if (!valid_domain(buf, (size_t) (first_end - buf)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image reference '%.128s': invalid registry '%.*s'",
                                         ref, (int) (first_end - buf), buf);
                snprintf(domain, sizeof domain, "%.*s", (int) (first_end - buf), buf);
                path = first_end + 1;
        }
        for (const char *p = path;;) {
                const char *end = strchrnul(p, '/');
                if (!valid_component(p, (size_t) (end - p)))
                        return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                         "image reference '%.128s': invalid repository component '%.*s' (lowercase letters "
                                         "and digits, separated by '.', '_', '__' or '-')",
                                         ref, (int) (end - p), p);
                if (!*end)
                        break;
                p = end + 1;
        }
        int n = snprintf(r.name, sizeof r.name, "%s/%s%s", domain,
                         streq(domain, "docker.io") && !strchr(path, '/') ? "library/" : "", path);
        if (n < 0 || (size_t) n >= sizeof r.name)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image reference '%.64s...': name too long", ref);
        snprintf(r.canonical, sizeof r.canonical, "%s%s%s", r.name, r.digest[0] ? "@" : ":", r.digest[0] ? r.digest : r.tag);
        *ret = r;
        return 0;
}

char *launch_image_dir(const char *store, const LaunchImageRef *r) {
        char *p = NULL;
        if (asprintf(&p, "%s/%s", store ? store : LAUNCH_DEFAULT_IMAGE_DIR, r->canonical) < 0)
                return NULL;
        return p;
}

/* Opens rel (components separated by '/', none "." or "..") below dirfd, every component with O_NOFOLLOW:
 * directories on the way, then the last one with flags. */
static int open_beneath(int dirfd, const char *rel, int flags) {
        char buf[PATH_MAX];
        if (strlen(rel) >= sizeof buf)
                return -ENAMETOOLONG;
        snprintf(buf, sizeof buf, "%s", rel);
        _cleanup_close_ int cur = fcntl(dirfd, F_DUPFD_CLOEXEC, 3);
        if (cur < 0)
                return -errno;
        char *save = NULL, *next;
        for (char *c = strtok_r(buf, "/", &save); c; c = next) {
                next = strtok_r(NULL, "/", &save);
                if (streq(c, ".") || streq(c, ".."))
                        return -EACCES;
                int fd = openat(cur, c, (next ? O_PATH | O_DIRECTORY : flags) | O_NOFOLLOW | O_CLOEXEC);
                if (fd < 0)
                        return -errno;
                close(cur);
                cur = fd;
        }
        return TAKE_FD(cur);
}

static int path_error(KvErr *e, int r, const char *ref, const char *what) {
        if (r == -ELOOP || r == -ENOTDIR)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EACCES,
                                 "image '%s': '%s' goes through a symlink (refused: an image reads nothing outside the "
                                 "store)",
                                 ref, what);
        if (r == -EACCES)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EACCES, "image '%s': '%s' must not contain '.' or '..'", ref,
                                 what);
        return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, r, "image '%s': cannot open '%s'", ref, what);
}

/* The image's directory, opened below the store (it exists, no symlink on the way). */
static int open_image(const char *store, const LaunchImageRef *r, KvErr *e) {
        _cleanup_close_ int root = open(store ? store : LAUNCH_DEFAULT_IMAGE_DIR, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (root < 0)
                return kverr_set_errno(e, KV_ERR_INVALID_CONFIG, -errno, "image store '%s'",
                                       store ? store : LAUNCH_DEFAULT_IMAGE_DIR);
        int fd = open_beneath(root, r->canonical, O_PATH | O_DIRECTORY);
        if (fd == -ENOENT)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                 "image '%s' is not in the image store %s (add it: kvnet-launcher image add %s ...)",
                                 r->canonical, store ? store : LAUNCH_DEFAULT_IMAGE_DIR, r->canonical);
        return fd < 0 ? path_error(e, fd, r->canonical, r->canonical) : fd;
}

int launch_image_file(const char *store, const LaunchImageRef *r, const char *inside, char **ret, KvErr *e) {
        if (!inside || inside[0] != '/')
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL,
                                 "image '%s': '%s' must be an absolute path inside the image", r->canonical,
                                 inside ? inside : "");
        _cleanup_close_ int img = open_image(store, r, e);
        if (img < 0)
                return img;
        _cleanup_close_ int fd = open_beneath(img, inside + 1, O_RDONLY | O_NOCTTY);
        if (fd < 0)
                return fd == -ENOENT ? kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT, "image '%s' has no '%s'", r->canonical, inside)
                                     : path_error(e, fd, r->canonical, inside);
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode))
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image '%s': '%s' is not a regular file", r->canonical,
                                 inside);
        /* the path libvirt is given: the one just checked (the store is the node's own, not the manifest's) */
        char *p = NULL;
        if (asprintf(&p, "%s/%s%s", store ? store : LAUNCH_DEFAULT_IMAGE_DIR, r->canonical, inside) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        *ret = p;
        return 0;
}

int launch_image_disk(const char *store, const LaunchImageRef *r, char **ret, KvErr *e) {
        _cleanup_close_ int img = open_image(store, r, e);
        if (img < 0)
                return img;
        int dfd = open_beneath(img, "disk", O_RDONLY | O_DIRECTORY);
        if (dfd < 0)
                return dfd == -ENOENT ? kverr_set(e, KV_ERR_INVALID_CONFIG, -ENOENT,
                                                  "image '%s' has no disk/ (a containerDisk image holds its disk in disk/)",
                                                  r->canonical)
                                      : path_error(e, dfd, r->canonical, "/disk");
        DIR *d = fdopendir(dfd);
        if (!d) {
                close(dfd);
                return kverr_set_errno(e, KV_ERR_IO, -errno, "image '%s': disk/", r->canonical);
        }
        char name[256] = "";
        size_t n = 0;
        for (struct dirent *de; (de = readdir(d));)
                if (de->d_name[0] != '.' && n++ == 0)
                        snprintf(name, sizeof name, "%s", de->d_name);
        closedir(d);
        if (n != 1)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image '%s': disk/ must hold exactly one file, it holds %zu",
                                 r->canonical, n);
        char inside[300];
        snprintf(inside, sizeof inside, "/disk/%s", name);
        return launch_image_file(store, r, inside, ret, e);
}
