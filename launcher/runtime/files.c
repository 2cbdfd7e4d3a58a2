/* SPDX-License-Identifier: Apache-2.0 */
/* kvnet-launcher: the files the launcher makes for a domain (emptyDisk sparse files, cloud-init seed
 * ISOs and their staging directories) and their removal when the VM is gone for good.
 *
 * Ownership: launch_prepare_files() records every file and directory it created or wrote, oldest
 * first; launch_files_remove() takes exactly those away again, newest first. A directory is only
 * removed when it is empty, so nothing the launcher did not write is ever deleted. An emptyDisk
 * file that already existed keeps its data and is not recorded (the launcher did not create it). */
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "common/array.h"
#include "common/fileio.h"
#include "launcher/launcher.h"

void launch_files_clear(LaunchFiles *f) {
        if (!f)
                return;
        for (size_t i = 0; i < f->n; i++)
                free(f->items[i].path);
        free(f->items);
        *f = (LaunchFiles){};
}

/* Takes ownership of path. */
static int files_add(LaunchFiles *f, char *path, bool dir) {
        if (!path)
                return -ENOMEM;
        int r = ARRAY_GROW(f->items, f->cap, f->n + 1);
        if (r < 0) {
                free(path);
                return r;
        }
        f->items[f->n++] = (LaunchFile){ .path = path, .dir = dir };
        return 0;
}

int launch_files_remove(LaunchFiles *f) {
        int first = 0;
        /* newest first: files before the directory that holds them */
        for (size_t i = f->n; i-- > 0;) {
                LaunchFile *it = &f->items[i];
                int r = it->dir ? rmdir(it->path) : unlink(it->path);
                if (r < 0 && errno != ENOENT) {
                        if (first == 0)
                                first = negative_errno();
                        continue;
                }
                free(it->path);
                it->path = NULL;
        }
        /* what could not be removed stays, in its order */
        size_t kept = 0;
        for (size_t i = 0; i < f->n; i++)
                if (f->items[i].path)
                        f->items[kept++] = f->items[i];
        f->n = kept;
        return first;
}

/* Returns 1 when the file was created, 0 when it existed (it keeps its data). */
static int create_sparse(const char *path, uint64_t size) {
        bool created = true;
        _cleanup_close_ int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0 && errno == EEXIST) {
                created = false;
                fd = open(path, O_WRONLY | O_CLOEXEC | O_NOFOLLOW);
        }
        if (fd < 0)
                return negative_errno();
        struct stat st;
        if (fstat(fd, &st) < 0)
                return negative_errno();
        if (!S_ISREG(st.st_mode))
                return -EEXIST;
        /* An existing disk keeps its data; it only grows to the requested capacity. */
        if ((uint64_t) st.st_size < size && ftruncate(fd, (off_t) size) < 0) {
                int r = negative_errno();
                if (created)
                        (void) unlink(path);
                return r;
        }
        return created ? 1 : 0;
}

static const char *find_iso_tool(void) {
        static const char *const tools[] = { "/usr/bin/genisoimage", "/usr/bin/mkisofs", "/usr/bin/xorrisofs" };
        for (size_t i = 0; i < ELEMENTSOF(tools); i++)
                if (access(tools[i], X_OK) == 0)
                        return tools[i];
        return NULL;
}

/* The ISO holds exactly the given files (in its root), never anything else found in their directory. */
static int build_seed_iso(const char *tool, char *const *files, size_t n_files, const char *iso) {
        const char *argv[16];
        size_t a = 0;
        argv[a++] = tool;
        argv[a++] = "-quiet";
        argv[a++] = "-output";
        argv[a++] = iso;
        argv[a++] = "-volid";
        argv[a++] = "cidata";
        argv[a++] = "-joliet";
        argv[a++] = "-rock";
        for (size_t i = 0; i < n_files && a + 1 < ELEMENTSOF(argv); i++)
                argv[a++] = files[i];
        argv[a] = NULL;
        pid_t pid = fork();
        if (pid < 0)
                return negative_errno();
        if (pid == 0) {
                int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
                if (devnull >= 0) {
                        dup2(devnull, STDIN_FILENO);
                        dup2(devnull, STDOUT_FILENO);
                }
                execv(tool, (char *const *) argv);
                _exit(127);
        }
        int st;
        while (waitpid(pid, &st, 0) < 0)
                if (errno != EINTR)
                        return negative_errno();
        return WIFEXITED(st) && WEXITSTATUS(st) == 0 ? 0 : -EIO;
}

static int prepare_cloud_init(const LaunchVmi *v, const LaunchDisk *d, LaunchFiles *f, KvErr *e) {
        const char *tool = find_iso_tool();
        if (!tool)
                return kverr_set(e, KV_ERR_INVALID_ENV, -ENOENT,
                                 "volume '%s': cloudInitNoCloud needs genisoimage, mkisofs or xorrisofs to build '%s'",
                                 d->name, d->path);
        _cleanup_free_ char *dir = NULL;
        if (asprintf(&dir, "%s/%s-cidata", v->state_dir, d->name) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        int r = 0;
        if (mkdir(dir, 0700) == 0)
                r = files_add(f, strdup(dir), true);
        else if (errno != EEXIST)
                r = negative_errno();
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "volume '%s': create '%s'", d->name, dir);
        r = launch_cloudinit_write_files(d, dir);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "volume '%s': write cloud-init files to '%s'", d->name, dir);
        /* What launch_cloudinit_write_files() wrote: meta-data and user-data always, network-config
         * when the VMI has networkData. Recorded once written (a failed write records nothing). */
        const char *names[] = { "meta-data", "user-data", d->cloud_init.network_config ? "network-config" : NULL };
        char *paths[ELEMENTSOF(names)];
        size_t n_paths = 0;
        for (size_t i = 0; i < ELEMENTSOF(names); i++) {
                if (!names[i])
                        continue;
                char *p = NULL;
                if (asprintf(&p, "%s/%s", dir, names[i]) < 0)
                        p = NULL;
                if ((r = files_add(f, p, false)) < 0)
                        return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
                paths[n_paths++] = p;
        }
        if ((r = files_add(f, strdup(d->path), false)) < 0)
                return kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
        r = build_seed_iso(tool, paths, n_paths, d->path);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "volume '%s': %s failed to build '%s'", d->name, tool, d->path);
        return 0;
}

int launch_prepare_files(const LaunchVmi *v, LaunchFiles *ret_created, KvErr *e) {
        LaunchFiles f = {};
        int r = mkdir_p(v->state_dir, 0700);
        if (r < 0)
                return kverr_set_errno(e, KV_ERR_IO, r, "create state dir '%s'", v->state_dir);
        for (size_t i = 0; i < v->n_disks && r >= 0; i++) {
                const LaunchDisk *d = &v->disks[i];
                if (d->kind == LAUNCH_VOLUME_EMPTY_DISK) {
                        r = create_sparse(d->path, d->capacity);
                        if (r < 0)
                                kverr_set_errno(e, KV_ERR_IO, r, "volume '%s': create empty disk '%s'", d->name,
                                                d->path);
                        else if (r > 0 && (r = files_add(&f, strdup(d->path), false)) < 0) {
                                (void) unlink(d->path); /* created, but cannot be recorded */
                                kverr_set(e, KV_ERR_INTERNAL, -ENOMEM, "out of memory");
                        }
                } else if (d->kind == LAUNCH_VOLUME_CLOUD_INIT_NOCLOUD)
                        r = prepare_cloud_init(v, d, &f, e);
        }
        if (r < 0) {
                /* nothing half-made stays behind */
                IGNORE_RESULT(launch_files_remove(&f));
                launch_files_clear(&f);
                return r;
        }
        if (ret_created) {
                launch_files_clear(ret_created);
                *ret_created = f;
        } else
                launch_files_clear(&f);
        return 0;
}
