/* SPDX-License-Identifier: Apache-2.0 */
/* Kubernetes Events about the pod, as Multus posts them (docs/multus.md, "Events"): AddedInterface (Normal) for
 * each delegate whose result has interfaces or IPs, posted once the whole ADD succeeded; NoNetworkFound (Warning)
 * when a requested network's NAD cannot be read. POST /api/v1/namespaces/NS/events through kube/, best effort:
 * an Event that cannot be posted never changes the command's outcome, it is one line on stderr (AddedInterface,
 * posted by a detached child: the logFile, when there is one). */
#include <fcntl.h>
#include <time.h>

#include "common/json-util.h"
#include "multus-compat/mc-priv.h"
#include "multus-compat/plugin/plugin.h"

/* The API answered moments ago; a slow one does not hold the runtime up long. Events are the command's last API
 * calls, so the client keeps this timeout. */
#define EVENT_TIMEOUT_MS 2000

void mc_events_done(McAddEvents *ev) {
        mc_strv_free(ev->messages, ev->n);
        *ev = (McAddEvents) {};
}

int mc_events_note(McAddEvents *ev, const McCachedDelegate *d, const NodeCniResult *res) {
        _cleanup_free_ char **ips = NULL, *msg = NULL;
        int r;
        /* Multus: "some CNI plugin just return empty result" (an auxiliary chain, a plugin that only tunes) */
        if (!res || (res->n_interfaces == 0 && res->n_ips == 0))
                return 0;
        if (res->n_ips && !(ips = calloc(res->n_ips, sizeof *ips)))
                return -ENOMEM;
        for (size_t i = 0; i < res->n_ips; i++)
                ips[i] = res->ips[i].address;
        if ((r = mc_event_added_message(d->ifname, ips, res->n_ips, d->name, &msg)) < 0)
                return r;
        return mc_strv_push(&ev->messages, &ev->n, msg);
}

static uint64_t realtime_ns(void) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * 1000000000u + (uint64_t) ts.tv_nsec;
}

/* One Event; -ECONNREFUSED & co. tell the caller to stop trying. */
static int post(McPlugin *p, McEvent *ev, uint64_t *last_ns) {
        _cleanup_free_ char *text = NULL;
        _cleanup_json_ json_t *body = NULL;
        KvErr e = {};
        /* the name carries the time: two Events of one ADD in the same nanosecond must still differ */
        ev->time_ns = realtime_ns();
        if (ev->time_ns <= *last_ns)
                ev->time_ns = *last_ns + 1;
        *last_ns = ev->time_ns;
        int r = mc_event_format(ev, &text);
        if (r < 0 || !(body = json_loads(text, 0, NULL)))
                return r < 0 ? r : -ENOMEM;
        KubeRequest req = { .verb = KUBE_CREATE, .ref = { "v1", "events", ev->namespace_, NULL }, .body = body };
        r = mc_kube_request_once(p, &req, NULL, &e);
        if (r < 0)
                fprintf(stderr, "kvnet-multus: event %s about pod %s/%s not posted: %s\n", ev->reason, ev->namespace_,
                        ev->pod_name, e.msg[0] ? e.msg : strerror(-r));
        return r;
}

static bool transport_error(int r) {
        return r == -ECONNREFUSED || r == -ECONNRESET || r == -ETIMEDOUT || r == -EIO;
}

/* The child that posts: off the runtime's pipes (it waits for their end, not for this process), its stderr the
 * logFile when there is one, no other descriptor of the parent's, and a client of its own (the parent's
 * connection ends when the parent exits). */
static int detach(McPlugin *p) {
        const char *log = p->conf->log_file;
        int null = open("/dev/null", O_RDWR | O_CLOEXEC);
        int err = log ? open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644) : -1;
        if (null < 0 || dup2(null, STDIN_FILENO) < 0 || dup2(null, STDOUT_FILENO) < 0 ||
            dup2(err >= 0 ? err : null, STDERR_FILENO) < 0)
                return -errno;
        /* nothing else of the parent's stays open here: not its API connection, not a hot-plug's cache lock */
        (void) close_range(3, ~0U, 0);
        (void) setsid();
        p->kc = NULL; /* the parent's, left alone */
        p->api_fd = -1; /* closed above */
        KvErr e = {};
        int r = mc_kube_connect(p, &e);
        if (r < 0)
                fprintf(stderr, "kvnet-multus: events about pod %s/%s not posted: %s\n", p->pod_ns, p->pod_name,
                        e.msg[0] ? e.msg : strerror(-r));
        return r;
}

void mc_events_post_added(McPlugin *p, const McPod *pod, const McAddEvents *ev) {
        uint64_t last = 0;
        if (!mc_api(p) || !pod || ev->n == 0)
                return;
        /* The result is printed: the runtime has it once this process exits, so a child the runtime does not wait
         * for posts the Events (one POST each, ~0.35 ms on a local API, more on a real one). No child: post here. */
        fflush(NULL);
        pid_t pid = fork();
        if (pid > 0)
                return;
        if (pid == 0 && detach(p) < 0)
                _exit(EXIT_FAILURE);
        mc_api_set_timeout(p, EVENT_TIMEOUT_MS);
        for (size_t i = 0; i < ev->n; i++) {
                McEvent e = { .namespace_ = pod->namespace_, .pod_name = pod->name, .pod_uid = pod->uid,
                              .type = "Normal", .reason = "AddedInterface", .message = ev->messages[i],
                              .component = MC_EVENT_COMPONENT };
                if (transport_error(post(p, &e, &last)))
                        break;
        }
        if (pid == 0)
                _exit(EXIT_SUCCESS); /* nothing of the parent's to clean up */
}

void mc_event_no_network(McPlugin *p, const char *net_ns, const char *net_name, const char *why) {
        _cleanup_free_ char *msg = NULL;
        uint64_t last = 0;
        if (!mc_api(p) || !p->pod_ns || !p->pod_name)
                return;
        /* Multus's wording, the API's error last (client-go: `network-attachment-definitions.k8s.cni.cncf.io "x" not
         * found`) */
        if (asprintf(&msg, "cannot find a network-attachment-definition (%s) in namespace (%s): %s", net_name, net_ns,
                     why) < 0)
                return;
        McEvent e = { .namespace_ = p->pod_ns, .pod_name = p->pod_name, .pod_uid = p->pod_uid, .type = "Warning",
                      .reason = "NoNetworkFound", .message = msg, .component = MC_EVENT_COMPONENT };
        mc_api_set_timeout(p, EVENT_TIMEOUT_MS);
        IGNORE_RESULT(post(p, &e, &last));
}
