/* SPDX-License-Identifier: Apache-2.0 */
/* Adding an image to the local image store (`kvnet-launcher image add`, docs/images.md): the files are copied
 * into a temporary directory beside the image's place, then renamed into it, so an image is either complete
 * or absent. The layout is the one launcher/vmi/images.c reads. */
#include <fcntl.h>
#include <limits.h>
#include <ftw.h>
#include <libgen.h>
#include <sys/stat.h>

#include "common/fileio.h"
#include "launcher/launcher.h"

static int copy_file(const char *src, const char *dst) {
        _cleanup_close_ int in = open(src, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return -errno;
        struct stat st;
        if (fstat(in, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EINVAL;
        _cleanup_close_ int out = open(dst, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (out < 0)
                return -errno;
        char buf[1 << 16];
        for (;;) {
                ssize_t n = read(in, buf, sizeof buf);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        break;
                for (ssize_t off = 0; off < n;) {
                        ssize_t w = write(out, buf + off, (size_t) (n - off));
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w < 0)
                                return -errno;
                        off += w;
                }
        }
        return fsync(out) < 0 ? -errno : 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) ftw;
        return (flag == FTW_DP ? rmdir(path) : unlink(path)) < 0 ? -1 : 0;
}

static void rm_tree(const char *dir) {
        (void) nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int launch_image_add(const char *store, const char *ref, const char *disk, const char *kernel, const char *initrd,
                     bool replace, KvErr *e) {
        LaunchImageRef r;
        int rv;
        if (!store)
                store = LAUNCH_DEFAULT_IMAGE_DIR;
        if ((rv = launch_image_ref_parse(ref, &r, e)) < 0)
                return rv;
        if (!disk && !kernel && !initrd)
                return kverr_set(e, KV_ERR_INVALID_CONFIG, -EINVAL, "image add: nothing to add (--disk, --kernel, --initrd)");
        _cleanup_free_ char *final = launch_image_dir(store, &r), *parent = final ? strdup(final) : NULL;
        if (!parent)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        dirname(parent);
        if ((rv = mkdir_p(parent, 0755)) < 0)
                return kverr_set_errno(e, KV_ERR_IO, rv, "image add: cannot make '%s'", parent);
        struct stat st;
        if (lstat(final, &st) == 0 && !replace)
                return kverr_set(e, KV_ERR_EXISTS, -EEXIST, "image '%s' is in the store already (--replace replaces it)",
                                 r.canonical);
        char tmp[PATH_MAX];
        snprintf(tmp, sizeof tmp, "%s/.add-XXXXXX", parent);
        if (!mkdtemp(tmp))
                return kverr_set_errno(e, KV_ERR_IO, -errno, "image add: cannot make a directory in '%s'", parent);
        if (chmod(tmp, 0755) < 0) {
                rv = kverr_set_errno(e, KV_ERR_IO, -errno, "image add: chmod '%s'", tmp);
                goto fail;
        }
        const struct {
                const char *src, *dir, *name;
        } files[] = {
                { disk, "disk", disk ? strrchr(disk, '/') ? strrchr(disk, '/') + 1 : disk : NULL },
                { kernel, "boot", "vmlinuz" },
                { initrd, "boot", "initrd.img" },
        };
        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                char dir[PATH_MAX + 8], dst[PATH_MAX + 300];
                if (!files[i].src)
                        continue;
                snprintf(dir, sizeof dir, "%s/%s", tmp, files[i].dir);
                snprintf(dst, sizeof dst, "%s/%s", dir, files[i].name);
                if ((rv = mkdir_p(dir, 0755)) < 0 || (rv = copy_file(files[i].src, dst)) < 0) {
                        kverr_set_errno(e, KV_ERR_IO, rv, "image add: cannot copy '%s' into the image", files[i].src);
                        goto fail;
                }
        }
        char old[PATH_MAX];
        snprintf(old, sizeof old, "%s/.old-XXXXXX", parent);
        bool had = lstat(final, &st) == 0;
        if (had && (!mkdtemp(old) || rename(final, old) < 0)) {
                rv = kverr_set_errno(e, KV_ERR_IO, -errno, "image add: cannot move the old '%s' aside", final);
                goto fail;
        }
        if (rename(tmp, final) < 0) {
                rv = kverr_set_errno(e, KV_ERR_IO, -errno, "image add: cannot rename into '%s'", final);
                if (had)
                        (void) rename(old, final);
                goto fail;
        }
        if (had)
                rm_tree(old);
        IGNORE_RESULT(fsync_dir(parent)); /* the image is in place either way */
        return 0;
fail:
        rm_tree(tmp);
        return rv;
}
