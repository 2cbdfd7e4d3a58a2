/* SPDX-License-Identifier: Apache-2.0 */
/* claimtool: drives the cluster claim store (netd/state/claimstore.h) directly, without a netd, for
 * tests/integration/test-claims-kube.sh.
 *
 *   claimtool (--kubeconfig F | --dir D) --node NAME VERB ARGS
 *     take NET KEY IP/LEN[,IP/LEN...] [MAC]   this node takes the claim
 *     get NET KEY                             the record as JSON, or "ABSENT" (exit 3)
 *     begin | finish | abort | detach | release NET KEY
 *     ready | unready NET KEY                 the target's targetReady
 *     taken NET IP KEY                        "taken" or "free" (for KEY)
 *     node-set IP | node-get NODE             the node registry
 *     dump                                    claimstore_dump() as JSON
 *     race N NET IP                           two child processes with the node names NAME-a and NAME-b
 *                                             take one claim N times at the same moment (even rounds: the
 *                                             same key, odd rounds: two keys, one address); prints
 *                                             RACE_ITERATIONS, RACE_ONE_WINNER, RACE_BAD, RACE_WINS_A/_B and
 *                                             exits 1 unless exactly one won every round
 * A failure prints "claimtool: ERRNO message" on stderr and exits 1 (2 for usage). */
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include "common/json-util.h"
#include "netd/state/claimstore.h"

typedef struct Opts {
        ClaimStoreConfig cfg;
        const char *node;
} Opts;

static int fail(int r, const KvErr *e) {
        const char *name = strerrorname_np(-r);
        fprintf(stderr, "claimtool: %s %s\n", name ? name : "?", e && e->msg[0] ? e->msg : strerror(-r));
        return 1;
}

static int open_store(const Opts *o, const char *node, ClaimStore **ret) {
        KvErr e = {};
        int r = claimstore_new(&o->cfg, node, ret, &e);
        return r < 0 ? fail(r, &e) : 0;
}

static int parse_addrs(const char *s, KvPrefix *addrs, size_t *n) {
        _cleanup_free_ char *copy = strdup(s);
        if (!copy)
                return -ENOMEM;
        *n = 0;
        char *save = NULL;
        for (char *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
                if (*n >= CS_MAX_ADDRS || kv_prefix_parse(t, &addrs[*n]) < 0)
                        return -EINVAL;
                (*n)++;
        }
        return 0;
}

static void print_json(json_t *j) {
        _cleanup_free_ char *s = j ? json_dump_compact(j) : NULL;
        printf("%s\n", s ? s : "null");
}

/* ---- race */

typedef struct Child {
        pid_t pid;
        int cmd, res; /* parent's ends */
} Child;

/* A child: reads "T key ip" / "R key" / "Q" lines, answers "W", "L errno message" or "OK". */
static int child_main(const Opts *o, const char *node, const char *net, int cmd, int res) {
        ClaimStore *cs;
        if (open_store(o, node, &cs) != 0)
                return 1;
        FILE *in = fdopen(cmd, "r");
        if (!in)
                return 1;
        char line[1024];
        static const uint8_t mac[6] = { 0x02, 0x6b, 0x76, 0, 0, 1 };
        while (fgets(line, sizeof line, in)) {
                char verb, key[512], ip[128], out[700];
                KvErr e = {};
                if (sscanf(line, "%c %511s %127s", &verb, key, ip) < 2)
                        break;
                if (verb == 'T') {
                        KvPrefix p;
                        if (kv_prefix_parse(ip, &p) < 0)
                                break;
                        int r = claimstore_take(cs, net, key, &p, 1, mac, &e);
                        if (r >= 0)
                                snprintf(out, sizeof out, "W\n");
                        else
                                snprintf(out, sizeof out, "L %s %.600s\n", strerrorname_np(-r) ?: "?", e.msg);
                } else if (verb == 'R') {
                        int r = claimstore_release(cs, net, key);
                        snprintf(out, sizeof out, r < 0 ? "L %s release\n" : "OK\n", strerrorname_np(-r) ?: "?");
                } else
                        break;
                if (write(res, out, strlen(out)) < 0)
                        break;
        }
        fclose(in);
        claimstore_free(cs);
        return 0;
}

static int spawn(const Opts *o, const char *node, const char *net, Child *c) {
        int cmd[2], res[2];
        if (pipe2(cmd, O_CLOEXEC) < 0 || pipe2(res, O_CLOEXEC) < 0)
                return -errno;
        fflush(NULL);
        pid_t pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                close(cmd[1]);
                close(res[0]);
                _exit(child_main(o, node, net, cmd[0], res[1]));
        }
        close(cmd[0]);
        close(res[1]);
        *c = (Child) { .pid = pid, .cmd = cmd[1], .res = res[0] };
        return 0;
}

static int child_read(Child *c, char *buf, size_t n) {
        size_t len = 0;
        while (len + 1 < n) {
                ssize_t k = read(c->res, buf + len, 1);
                if (k <= 0)
                        return -EPIPE;
                if (buf[len++] == '\n')
                        break;
        }
        buf[len] = '\0';
        return 0;
}

static int race(const Opts *o, unsigned n, const char *net, const char *ip) {
        char na[CS_NODE_MAX], nb[CS_NODE_MAX];
        snprintf(na, sizeof na, "%.40s-a", o->node);
        snprintf(nb, sizeof nb, "%.40s-b", o->node);
        Child ch[2];
        if (spawn(o, na, net, &ch[0]) < 0 || spawn(o, nb, net, &ch[1]) < 0) {
                fprintf(stderr, "claimtool: cannot start the racers: %m\n");
                return 1;
        }
        ClaimStore *check;
        if (open_store(o, o->node, &check) != 0)
                return 1;
        KvPrefix p;
        if (kv_prefix_parse(ip, &p) < 0)
                return 2;
        unsigned one = 0, bad = 0, wins[2] = {};
        for (unsigned i = 0; i < n; i++) {
                bool same = i % 2 == 0;
                char keys[2][128], cmd[2][512], ans[2][800];
                for (int k = 0; k < 2; k++) {
                        snprintf(keys[k], sizeof keys[k], same ? "vm/race/r%u" : "vm/race/r%u-%c", i, 'a' + k);
                        snprintf(cmd[k], sizeof cmd[k], "T %s %s\n", keys[k], ip);
                }
                /* both commands go out back to back: the children take at the same moment */
                if (write(ch[0].cmd, cmd[0], strlen(cmd[0])) < 0 || write(ch[1].cmd, cmd[1], strlen(cmd[1])) < 0 ||
                    child_read(&ch[0], ans[0], sizeof ans[0]) < 0 || child_read(&ch[1], ans[1], sizeof ans[1]) < 0) {
                        fprintf(stderr, "claimtool: a racer died in round %u\n", i);
                        return 1;
                }
                int won = -1, n_won = 0;
                for (int k = 0; k < 2; k++)
                        if (ans[k][0] == 'W') {
                                won = k;
                                n_won++;
                        }
                /* the store agrees: the winner holds its key, the address is taken for any other key */
                bool ok = n_won == 1;
                if (ok) {
                        CsRecord rec;
                        ok = claimstore_get(check, net, keys[won], &rec) == 1 && streq(rec.holder, won ? nb : na) &&
                             rec.n_addrs == 1 && kv_addr_equal(&rec.addrs[0].addr, &p.addr) &&
                             claimstore_addr_taken(check, net, &p.addr, "vm/race/nobody");
                        if (!same)
                                ok = ok && claimstore_get(check, net, keys[!won], &rec) == 0;
                }
                if (ok) {
                        one++;
                        wins[won]++;
                } else {
                        bad++;
                        printf("ROUND %u %s: a=%s b=%s", i, same ? "same-key" : "two-keys", strtok(ans[0], "\n"),
                               strtok(ans[1], "\n"));
                }
                for (int k = 0; k < 2; k++) {
                        snprintf(cmd[k], sizeof cmd[k], "R %s\n", keys[k]);
                        if (write(ch[k].cmd, cmd[k], strlen(cmd[k])) < 0 || child_read(&ch[k], ans[k], sizeof ans[k]) < 0)
                                return 1;
                }
                CsRecord rec;
                if (claimstore_get(check, net, keys[0], &rec) != 0 || claimstore_get(check, net, keys[1], &rec) != 0 ||
                    claimstore_addr_taken(check, net, &p.addr, "vm/race/nobody")) {
                        printf("ROUND %u: the release left the claim or the address behind\n", i);
                        bad++;
                }
        }
        for (int k = 0; k < 2; k++) {
                /* "Q", not EOF: the other child holds a copy of this pipe's write end */
                IGNORE_RESULT(write(ch[k].cmd, "Q\n", 2));
                close(ch[k].cmd);
                int st;
                waitpid(ch[k].pid, &st, 0);
                close(ch[k].res);
        }
        claimstore_free(check);
        printf("RACE_ITERATIONS=%u\nRACE_ONE_WINNER=%u\nRACE_BAD=%u\nRACE_WINS_A=%u\nRACE_WINS_B=%u\n", n, one, bad,
               wins[0], wins[1]);
        return bad == 0 && one == n ? 0 : 1;
}

/* ---- one-shot verbs */

static int run(const Opts *o, int argc, char **argv) {
        const char *verb = argv[0];
        if (streq(verb, "race")) {
                if (argc != 4)
                        return 2;
                return race(o, (unsigned) strtoul(argv[1], NULL, 10), argv[2], argv[3]);
        }
        ClaimStore *cs;
        if (open_store(o, o->node, &cs) != 0)
                return 1;
        KvErr e = {};
        int r = 0, rc = 0;
        if (streq(verb, "take") && (argc == 4 || argc == 5)) {
                KvPrefix addrs[CS_MAX_ADDRS];
                size_t n;
                uint8_t mac[6] = { 0x02, 0x6b, 0x76, 0, 0, 2 };
                if (parse_addrs(argv[3], addrs, &n) < 0 || (argc == 5 && kv_mac_parse(argv[4], mac) < 0))
                        rc = 2;
                else
                        r = claimstore_take(cs, argv[1], argv[2], addrs, n, mac, &e);
        } else if (streq(verb, "get") && argc == 3) {
                CsRecord rec;
                r = claimstore_get(cs, argv[1], argv[2], &rec);
                if (r == 0) {
                        printf("ABSENT\n");
                        rc = 3;
                } else if (r > 0) {
                        _cleanup_json_ json_t *j = claimstore_record_to_json(&rec);
                        print_json(j);
                }
        } else if (streq(verb, "begin") && argc == 3)
                r = claimstore_begin_migration(cs, argv[1], argv[2], &e);
        else if (streq(verb, "finish") && argc == 3)
                r = claimstore_finish_migration(cs, argv[1], argv[2], &e);
        else if ((streq(verb, "ready") || streq(verb, "unready")) && argc == 3)
                r = claimstore_set_target_ready(cs, argv[1], argv[2], streq(verb, "ready"), &e);
        else if (streq(verb, "abort") && argc == 3)
                r = claimstore_abort_migration(cs, argv[1], argv[2]);
        else if (streq(verb, "detach") && argc == 3)
                r = claimstore_detach(cs, argv[1], argv[2]);
        else if (streq(verb, "release") && argc == 3)
                r = claimstore_release(cs, argv[1], argv[2]);
        else if (streq(verb, "taken") && argc == 4) {
                KvAddr a;
                if (kv_addr_parse(argv[2], &a) < 0)
                        rc = 2;
                else
                        printf("%s\n", claimstore_addr_taken(cs, argv[1], &a, argv[3]) ? "taken" : "free");
        } else if (streq(verb, "node-set") && argc == 2) {
                KvAddr a;
                if (kv_addr_parse(argv[1], &a) < 0)
                        rc = 2;
                else
                        r = claimstore_set_node_address(cs, &a);
        } else if (streq(verb, "node-get") && argc == 2) {
                KvAddr a;
                char s[KV_ADDR_STRLEN];
                r = claimstore_node_address(cs, argv[1], &a);
                if (r >= 0)
                        printf("%s\n", kv_addr_fmt(&a, s));
        } else if (streq(verb, "dump") && argc == 1) {
                _cleanup_json_ json_t *j = claimstore_dump(cs);
                print_json(j);
        } else
                rc = 2;
        if (r < 0)
                rc = fail(r, &e);
        claimstore_free(cs);
        return rc;
}

int main(int argc, char **argv) {
        static const struct option longopts[] = {
                { "kubeconfig", required_argument, NULL, 'k' },
                { "dir", required_argument, NULL, 'd' },
                { "node", required_argument, NULL, 'n' },
                { "timeout-ms", required_argument, NULL, 't' },
                {},
        };
        Opts o = { .cfg = { .backend = CLAIMSTORE_DIR, .durable = false } };
        int c;
        while ((c = getopt_long(argc, argv, "", longopts, NULL)) >= 0)
                switch (c) {
                case 'k':
                        o.cfg.backend = CLAIMSTORE_KUBE;
                        o.cfg.kubeconfig = optarg;
                        break;
                case 'd':
                        o.cfg.backend = CLAIMSTORE_DIR;
                        o.cfg.dir = optarg;
                        break;
                case 'n':
                        o.node = optarg;
                        break;
                case 't':
                        o.cfg.timeout_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (optind >= argc || !o.node || (o.cfg.backend == CLAIMSTORE_DIR && !o.cfg.dir)) {
                fprintf(stderr, "usage: claimtool (--kubeconfig F | --dir D) --node NAME VERB ARGS (see the source)\n");
                return 2;
        }
        signal(SIGPIPE, SIG_IGN);
        int rc = run(&o, argc - optind, argv + optind);
        if (rc == 2)
                fprintf(stderr, "claimtool: bad arguments for '%s'\n", argv[optind]);
        return rc;
}
