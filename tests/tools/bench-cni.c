/* SPDX-License-Identifier: Apache-2.0 */
/* bench-cni: measures the wall time of CNI plugin invocations, the way a runtime calls them.
 *
 * Each invocation is a fresh posix_spawn() of the plugin binary with the CNI_* environment and
 * the network config on stdin; the time from just before the spawn to the return of waitpid()
 * is measured with CLOCK_MONOTONIC. A run is N sequential ADDs (distinct container IDs,
 * interface names e0..e<N-1>) into one sandbox netns, then the N DELs (with the ADD result as
 * prevResult, as libcni does). With --workers W, W processes each do N/W attachments into their
 * own sandbox netns concurrently. With --rounds R the whole sequence repeats R times and the
 * samples are pooled (N=1, R=20: twenty fresh single attachments).
 *
 * Output (stdout): one line
 *   BENCH_CNI PLUGIN=<label> N=<n> WORKERS=<w> ROUNDS=<r> ADD_MEDIAN_MS=… ADD_P99_MS=…
 *             DEL_MEDIAN_MS=… DEL_P99_MS=… ADD_FIRST10_MS=… ADD_LAST10_MS=… ADD_TOTAL_S=… DEL_TOTAL_S=…
 * ADD_FIRST10/LAST10 are the medians of the first and last ten ADDs of each worker (pooled).
 * Any failed invocation prints the plugin's stdout and stderr and exits 1.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <spawn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>

#include <jansson.h>

#include "common/fileio.h"
#include "common/json-util.h"
#include "common/log.h"
#include "common/util.h"

extern char **environ;

#define MAX_OUTPUT (1024 * 1024)

typedef struct Options {
        const char *plugin;
        const char *config_path;
        const char *label;
        const char *cni_path;
        const char *cni_args;
        const char *id_prefix;
        const char *if_prefix;
        const char *samples_path; /* every sample, one line each: "<worker> <op> <index> <ms>" */
        char **netns; /* one per worker */
        size_t n_netns;
        unsigned n;
        unsigned workers;
        unsigned rounds;
        bool prev_result;
        bool per_attachment; /* attachment i uses sandbox "<netns>-<i>" (made by the caller) */
} Options;

typedef struct Invocation {
        const char *command;
        const char *container_id;
        const char *netns;
        const char *ifname;
        const char *stdin_data;
} Invocation;

static double now_ms(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

static int memfd_with(const char *name, const char *data, int *ret_fd) {
        _cleanup_close_ int fd = memfd_create(name, MFD_CLOEXEC);
        if (fd < 0)
                return negative_errno();
        size_t len = data ? strlen(data) : 0, off = 0;
        while (off < len) {
                ssize_t k = write(fd, data + off, len - off);
                if (k < 0)
                        return negative_errno();
                off += (size_t) k;
        }
        if (lseek(fd, 0, SEEK_SET) < 0)
                return negative_errno();
        *ret_fd = TAKE_FD(fd);
        return 0;
}

static void strv_free(char **v) {
        if (!v)
                return;
        for (char **p = v; *p; p++)
                free(*p);
        free(v);
}
DEFINE_TRIVIAL_CLEANUP_FUNC(char **, strv_free);

/* environ without CNI_* plus the invocation's CNI variables. */
static int build_env(const Options *o, const Invocation *inv, char ***ret) {
        size_t n = 0;
        while (environ[n])
                n++;
        _cleanup_(strv_freep) char **env = calloc(n + 8, sizeof(char *));
        if (!env)
                return -ENOMEM;
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                if (strncmp(environ[i], "CNI_", 4) == 0)
                        continue;
                if (!(env[k++] = strdup(environ[i])))
                        return -ENOMEM;
        }
        if (asprintf(&env[k++], "CNI_COMMAND=%s", inv->command) < 0 ||
            asprintf(&env[k++], "CNI_CONTAINERID=%s", inv->container_id) < 0 ||
            asprintf(&env[k++], "CNI_NETNS=%s", inv->netns) < 0 ||
            asprintf(&env[k++], "CNI_IFNAME=%s", inv->ifname) < 0 ||
            asprintf(&env[k++], "CNI_PATH=%s", o->cni_path) < 0 ||
            asprintf(&env[k++], "CNI_ARGS=%s", o->cni_args) < 0) {
                env[k - 1] = NULL;
                return -ENOMEM;
        }
        *ret = TAKE_PTR(env);
        return 0;
}

static char *read_memfd(int fd) {
        char *buf = NULL;
        size_t len;
        if (lseek(fd, 0, SEEK_SET) < 0 || read_fd_max(fd, MAX_OUTPUT, &buf, &len) < 0)
                return strdup("");
        return buf;
}

/* Runs the plugin once; returns its wall time in *ret_ms and its stdout in *ret_out.
 * -EPROTO when the plugin exited non-zero (its output has been printed). */
static int invoke(const Options *o, const Invocation *inv, double *ret_ms, char **ret_out) {
        _cleanup_(strv_freep) char **env = NULL;
        _cleanup_close_ int in_fd = -1, out_fd = -1, err_fd = -1;
        posix_spawn_file_actions_t fa;
        int r;

        r = build_env(o, inv, &env);
        if (r < 0)
                return r;
        if ((r = memfd_with("cni-stdin", inv->stdin_data, &in_fd)) < 0 ||
            (r = memfd_with("cni-stdout", NULL, &out_fd)) < 0 || (r = memfd_with("cni-stderr", NULL, &err_fd)) < 0)
                return r;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_adddup2(&fa, in_fd, 0);
        posix_spawn_file_actions_adddup2(&fa, out_fd, 1);
        posix_spawn_file_actions_adddup2(&fa, err_fd, 2);

        char *argv[] = { (char *) o->plugin, NULL };
        pid_t pid;
        double t0 = now_ms();
        r = posix_spawn(&pid, o->plugin, &fa, NULL, argv, env);
        if (r != 0) {
                posix_spawn_file_actions_destroy(&fa);
                return -r;
        }
        int status;
        while (waitpid(pid, &status, 0) < 0)
                if (errno != EINTR) {
                        posix_spawn_file_actions_destroy(&fa);
                        return negative_errno();
                }
        double t1 = now_ms();
        posix_spawn_file_actions_destroy(&fa);

        _cleanup_free_ char *out = read_memfd(out_fd);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                _cleanup_free_ char *err = read_memfd(err_fd);
                fprintf(stderr, "bench-cni: %s %s %s failed (status 0x%x)\nstdout: %s\nstderr: %s\n",
                        inv->command, inv->container_id, inv->ifname, (unsigned) status, out ? out : "",
                        err ? err : "");
                return -EPROTO;
        }
        *ret_ms = t1 - t0;
        if (ret_out)
                *ret_out = TAKE_PTR(out);
        return 0;
}

/* The DEL config: the network config plus "prevResult" = the ADD result (if it parses). */
static char *del_config(json_t *conf, const char *add_result) {
        _cleanup_json_ json_t *copy = json_deep_copy(conf);
        if (!copy)
                return NULL;
        json_t *prev = add_result ? json_loads(add_result, 0, NULL) : NULL;
        if (prev && json_is_object(prev))
                json_object_set_new(copy, "prevResult", prev);
        else
                json_decref(prev);
        return json_dump_compact(copy);
}

/* One worker: rounds × (n ADDs, n DELs) into netns; samples go to add_ms/del_ms (rounds*n each). */
static int run_worker(const Options *o, json_t *conf, const char *conf_text, unsigned worker, const char *netns,
                      unsigned n, double *add_ms, double *del_ms) {
        _cleanup_free_ char **results = calloc(n, sizeof(char *));
        if (!results)
                return -ENOMEM;
        int r = 0;

        for (unsigned round = 0; round < o->rounds && r >= 0; round++) {
                for (unsigned i = 0; i < n; i++) {
                        char cid[128], ifname[16];
                        snprintf(cid, sizeof cid, "%s-w%u-r%u-%u", o->id_prefix, worker, round, i);
                        snprintf(ifname, sizeof ifname, "%s%u", o->if_prefix, i);
                        char ns[PATH_MAX];
                        snprintf(ns, sizeof ns, o->per_attachment ? "%s-%u" : "%s", netns, i);
                        Invocation inv = { "ADD", cid, ns, ifname, conf_text };
                        r = invoke(o, &inv, &add_ms[round * n + i], &results[i]);
                        if (r < 0)
                                break;
                }
                for (unsigned i = 0; i < n && r >= 0; i++) {
                        char cid[128], ifname[16];
                        snprintf(cid, sizeof cid, "%s-w%u-r%u-%u", o->id_prefix, worker, round, i);
                        snprintf(ifname, sizeof ifname, "%s%u", o->if_prefix, i);
                        _cleanup_free_ char *dconf = o->prev_result ? del_config(conf, results[i]) : NULL;
                        char ns[PATH_MAX];
                        snprintf(ns, sizeof ns, o->per_attachment ? "%s-%u" : "%s", netns, i);
                        Invocation inv = { "DEL", cid, ns, ifname, dconf ? dconf : conf_text };
                        r = invoke(o, &inv, &del_ms[round * n + i], NULL);
                }
                for (unsigned i = 0; i < n; i++)
                        free(TAKE_PTR(results[i]));
        }
        return r;
}

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

/* Nearest-rank percentile of a copy of v. */
static double percentile(const double *v, size_t n, unsigned p) {
        if (n == 0)
                return 0;
        _cleanup_free_ double *s = malloc(n * sizeof(double));
        if (!s)
                return 0;
        memcpy(s, v, n * sizeof(double));
        qsort(s, n, sizeof(double), cmp_double);
        if (p == 50 && n % 2 == 0)
                return (s[n / 2 - 1] + s[n / 2]) / 2;
        size_t rank = (p * n + 99) / 100; /* ceil(p% of n) */
        if (rank < 1)
                rank = 1;
        return s[rank - 1];
}

static double sum(const double *v, size_t n) {
        double t = 0;
        for (size_t i = 0; i < n; i++)
                t += v[i];
        return t;
}

/* Every sample in order, per worker: the raw series behind first10/last10 (for plots and profiles). */
static int write_samples(const char *path, const double *add_ms, const double *del_ms, unsigned workers,
                         size_t per_w) {
        FILE *f = fopen(path, "we");
        if (!f)
                return negative_errno();
        for (unsigned w = 0; w < workers; w++)
                for (size_t i = 0; i < per_w; i++)
                        fprintf(f, "%u ADD %zu %.3f\n", w, i, add_ms[w * per_w + i]);
        for (unsigned w = 0; w < workers; w++)
                for (size_t i = 0; i < per_w; i++)
                        fprintf(f, "%u DEL %zu %.3f\n", w, i, del_ms[w * per_w + i]);
        if (fclose(f) != 0)
                return negative_errno();
        return 0;
}

static void help(void) {
        printf("bench-cni --plugin PATH --config FILE --netns PATH[,PATH…] [options]\n"
               "  -p, --plugin PATH       CNI plugin binary\n"
               "  -c, --config FILE       network config (JSON object with cniVersion, name, type)\n"
               "  -s, --netns PATH        sandbox netns; one per worker (repeat or comma-separate)\n"
               "  --sandbox-per-attachment  attachment i goes to sandbox PATH-<i> (created by the caller)\n"
               "  -n, --count N           attachments per round (split between workers), default 1\n"
               "  -w, --workers W         concurrent worker processes, default 1\n"
               "  -r, --rounds R          repeat the whole ADD/DEL sequence R times, default 1\n"
               "  -l, --label NAME        PLUGIN= label in the output (default: the plugin's basename)\n"
               "      --cni-path DIRS     CNI_PATH (default: the plugin's directory:/usr/lib/cni)\n"
               "      --cni-args ARGS     CNI_ARGS (default IgnoreUnknown=1)\n"
               "      --id-prefix S       container ID prefix (default bench-<pid>)\n"
               "      --if-prefix S       interface name prefix (default e)\n"
               "      --no-prev-result    DEL without prevResult\n"
               "      --samples FILE      also write every sample: '<worker> ADD|DEL <index> <ms>' per line\n");
}

static int add_netns(Options *o, const char *arg) {
        _cleanup_free_ char *copy = strdup(arg);
        char *save = NULL;
        if (!copy)
                return -ENOMEM;
        for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
                char **nv = realloc(o->netns, (o->n_netns + 1) * sizeof(char *));
                if (!nv)
                        return -ENOMEM;
                o->netns = nv;
                if (!(o->netns[o->n_netns] = strdup(tok)))
                        return -ENOMEM;
                o->n_netns++;
        }
        return 0;
}

static void options_done(Options *o) {
        for (size_t i = 0; i < o->n_netns; i++)
                free(o->netns[i]);
        free(o->netns);
        o->netns = NULL;
        o->n_netns = 0;
}

static int parse_uint(const char *field, const char *s, unsigned min, unsigned max, unsigned *ret) {
        char *end;
        errno = 0;
        unsigned long v = strtoul(s, &end, 10);
        if (errno || end == s || *end || v < min || v > max) {
                log_error("bench-cni: '%s' must be %u..%u, got '%s'", field, min, max, s);
                return -EINVAL;
        }
        *ret = (unsigned) v;
        return 0;
}

int main(int argc, char **argv) {
        enum { OPT_CNI_PATH = 0x100, OPT_CNI_ARGS, OPT_ID_PREFIX, OPT_IF_PREFIX, OPT_NO_PREV, OPT_PER_ATT, OPT_SAMPLES };
        static const struct option longopts[] = {
                { "plugin", required_argument, NULL, 'p' },
                { "config", required_argument, NULL, 'c' },
                { "netns", required_argument, NULL, 's' },
                { "count", required_argument, NULL, 'n' },
                { "workers", required_argument, NULL, 'w' },
                { "rounds", required_argument, NULL, 'r' },
                { "label", required_argument, NULL, 'l' },
                { "cni-path", required_argument, NULL, OPT_CNI_PATH },
                { "cni-args", required_argument, NULL, OPT_CNI_ARGS },
                { "id-prefix", required_argument, NULL, OPT_ID_PREFIX },
                { "if-prefix", required_argument, NULL, OPT_IF_PREFIX },
                { "no-prev-result", no_argument, NULL, OPT_NO_PREV },
                { "sandbox-per-attachment", no_argument, NULL, OPT_PER_ATT },
                { "samples", required_argument, NULL, OPT_SAMPLES },
                { "help", no_argument, NULL, 'h' },
                {},
        };
        _cleanup_(options_done) Options o = { .n = 1, .workers = 1, .rounds = 1, .cni_args = "IgnoreUnknown=1", .if_prefix = "e",
                      .prev_result = true };
        _cleanup_free_ char *default_cni_path = NULL, *default_id = NULL;
        int c, r;

        log_set_ident("bench-cni");
        while ((c = getopt_long(argc, argv, "p:c:s:n:w:r:l:h", longopts, NULL)) >= 0) {
                switch (c) {
                case 'p': o.plugin = optarg; break;
                case 'c': o.config_path = optarg; break;
                case 's':
                        if (add_netns(&o, optarg) < 0)
                                return 1;
                        break;
                case 'n':
                        if (parse_uint("count", optarg, 1, 100000, &o.n) < 0)
                                return 2;
                        break;
                case 'w':
                        if (parse_uint("workers", optarg, 1, 64, &o.workers) < 0)
                                return 2;
                        break;
                case 'r':
                        if (parse_uint("rounds", optarg, 1, 100000, &o.rounds) < 0)
                                return 2;
                        break;
                case 'l': o.label = optarg; break;
                case OPT_CNI_PATH: o.cni_path = optarg; break;
                case OPT_CNI_ARGS: o.cni_args = optarg; break;
                case OPT_ID_PREFIX: o.id_prefix = optarg; break;
                case OPT_IF_PREFIX: o.if_prefix = optarg; break;
                case OPT_NO_PREV: o.prev_result = false; break;
                case OPT_PER_ATT: o.per_attachment = true; break;
                case OPT_SAMPLES: o.samples_path = optarg; break;
                case 'h': help(); return 0;
                default: return 2;
                }
        }
        if (!o.plugin || !o.config_path || o.n_netns == 0) {
                log_error("bench-cni: --plugin, --config and --netns are required (see --help)");
                return 2;
        }
        if (o.n_netns != o.workers) {
                log_error("bench-cni: 'netns' needs one path per worker: %u workers, got %zu", o.workers, o.n_netns);
                return 2;
        }
        if (o.n % o.workers != 0) {
                log_error("bench-cni: 'count' must be a multiple of 'workers' (%u), got %u", o.workers, o.n);
                return 2;
        }
        if (!o.label) {
                const char *b = strrchr(o.plugin, '/');
                o.label = b ? b + 1 : o.plugin;
        }
        if (!o.cni_path) {
                _cleanup_free_ char *dir = strdup(o.plugin);
                if (!dir)
                        return 1;
                char *slash = strrchr(dir, '/');
                if (slash)
                        *slash = 0;
                if (asprintf(&default_cni_path, "%s:/usr/lib/cni", slash ? dir : ".") < 0)
                        return 1;
                o.cni_path = default_cni_path;
        }
        if (!o.id_prefix) {
                if (asprintf(&default_id, "bench-%d", (int) getpid()) < 0)
                        return 1;
                o.id_prefix = default_id;
        }

        _cleanup_free_ char *text = NULL;
        size_t len;
        r = read_file_max(o.config_path, MAX_OUTPUT, &text, &len);
        if (r < 0)
                return log_error_errno(r, "bench-cni: read config '%s': %m", o.config_path), 1;
        KvErr e = {};
        _cleanup_json_ json_t *conf = NULL;
        r = json_parse_object(text, len, MAX_OUTPUT, o.config_path, &conf, &e);
        if (r < 0) {
                log_error("bench-cni: config '%s': %s", o.config_path, e.msg);
                return 1;
        }

        unsigned per = o.n / o.workers;
        size_t total = (size_t) o.n * o.rounds;
        /* Shared with the workers: their samples, and their exit codes. */
        size_t bytes = 2 * total * sizeof(double);
        double *mem = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (mem == MAP_FAILED)
                return log_error_errno(negative_errno(), "bench-cni: mmap: %m"), 1;
        double *add_ms = mem, *del_ms = mem + total;

        double t0 = now_ms();
        int failed = 0;
        if (o.workers == 1) {
                r = run_worker(&o, conf, text, 0, o.netns[0], per, add_ms, del_ms);
                failed = r < 0;
        } else {
                pid_t pids[64];
                for (unsigned w = 0; w < o.workers; w++) {
                        pids[w] = fork();
                        if (pids[w] < 0)
                                return log_error_errno(negative_errno(), "bench-cni: fork: %m"), 1;
                        if (pids[w] == 0) {
                                r = run_worker(&o, conf, text, w, o.netns[w], per, add_ms + (size_t) w * per * o.rounds,
                                               del_ms + (size_t) w * per * o.rounds);
                                _exit(r < 0 ? 1 : 0);
                        }
                }
                for (unsigned w = 0; w < o.workers; w++) {
                        int st;
                        while (waitpid(pids[w], &st, 0) < 0 && errno == EINTR)
                                ;
                        if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
                                failed = 1;
                }
        }
        double elapsed = now_ms() - t0;
        if (failed) {
                log_error("bench-cni: %s: a plugin invocation failed, no figures", o.label);
                return 1;
        }

        /* First/last ten ADDs of each worker (their samples are contiguous). */
        size_t per_w = (size_t) per * o.rounds, k = per_w < 10 ? per_w : 10;
        _cleanup_free_ double *first = calloc(k * o.workers, sizeof(double));
        _cleanup_free_ double *last = calloc(k * o.workers, sizeof(double));
        if (!first || !last)
                return 1;
        for (unsigned w = 0; w < o.workers; w++) {
                memcpy(first + w * k, add_ms + w * per_w, k * sizeof(double));
                memcpy(last + w * k, add_ms + w * per_w + per_w - k, k * sizeof(double));
        }

        if (o.samples_path) {
                r = write_samples(o.samples_path, add_ms, del_ms, o.workers, per_w);
                if (r < 0)
                        return log_error_errno(r, "bench-cni: write samples '%s': %m", o.samples_path), 1;
        }

        printf("BENCH_CNI PLUGIN=%s N=%u WORKERS=%u ROUNDS=%u ADD_MEDIAN_MS=%.2f ADD_P99_MS=%.2f "
               "DEL_MEDIAN_MS=%.2f DEL_P99_MS=%.2f ADD_FIRST10_MS=%.2f ADD_LAST10_MS=%.2f "
               "ADD_TOTAL_S=%.2f DEL_TOTAL_S=%.2f WALL_S=%.2f\n",
               o.label, o.n, o.workers, o.rounds, percentile(add_ms, total, 50), percentile(add_ms, total, 99),
               percentile(del_ms, total, 50), percentile(del_ms, total, 99), percentile(first, k * o.workers, 50),
               percentile(last, k * o.workers, 50), sum(add_ms, total) / 1000, sum(del_ms, total) / 1000,
               elapsed / 1000);
        munmap(mem, bytes);
        return 0;
}
