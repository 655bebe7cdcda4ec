/*
 * Interop test program for libgearman's C API (Debian package libgearman-dev).
 * The Go test builds it with: gcc -O1 -Wall -Werror -o capi capi.c -lgearman
 *
 * Usage: capi HOST PORT COMMAND ARGS...
 *
 * Client commands (the client timeout is 20 s; every command ends with "OK"):
 *   do PRIO FN WORKLOAD [UNIQUE]   gearman_client_do / _do_high / _do_low
 *                                  -> RESULT <gearman_strerror(rc)> <result>
 *   bg PRIO FN WORKLOAD [UNIQUE]   gearman_client_do_background / _high_ / _low_
 *                                  -> HANDLE <handle>
 *   epoch FN SECONDS WORKLOAD      gearman_execute with gearman_task_attr_init_epoch
 *                                  (run at time(NULL) + SECONDS: SUBMIT_JOB_EPOCH)
 *                                  -> HANDLE <handle> <epoch>
 *   status HANDLE                  gearman_client_job_status
 *                                  -> STATUS <known> <running> <numerator> <denominator>
 *   tasks [--unique=U] FN W [FN W ...]
 *                                  one gearman_client_add_task per pair, then
 *                                  gearman_client_run_tasks; callbacks print
 *                                  CREATED <w> <handle> | COMPLETE <w> <result> | FAIL <w>
 *                                  and finally RUNTASKS <gearman_strerror(rc)>
 * PRIO is normal, high or low. Failures print ERROR <what> <rc> <message>, exit 1.
 *
 * Worker command:
 *   worker MAXJOBS FN=BEHAVIOUR[@TIMEOUT] ...
 *     gearman_worker_add_function(FN, TIMEOUT or 0); serves until MAXJOBS jobs
 *     were assigned (a repeated assignment counts) or 25 s passed; output lines:
 *       READY                                  every function registered
 *       START <fn> <handle> <unique> <workload> a job was assigned
 *       END <fn> <handle>                      the callback returns
 *       WORK_ERROR <rc> <message>              gearman_worker_work failed with
 *                                              anything but a timeout
 *       EXIT <jobs>
 *     Behaviours:
 *       reverse   return the workload reversed
 *       status    gearman_job_send_status(1, 3), print STATUS_SENT <handle>,
 *                 wait for $RELEASE_FILE, return "status-done:<workload>"
 *       hold      wait for $RELEASE_FILE, return "held:<workload>"
 *       overrun   first assignment of a handle: sleep 2.5 s, print OVERRAN <handle>,
 *                 return "late:<workload>"; later ones return "again:<workload>"
 */
#include <libgearman/gearman.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define CLIENT_TIMEOUT_MS 20000
#define WORKER_POLL_MS 200
#define WORKER_LIFETIME_S 25
#define RELEASE_WAIT_S 20
#define MAX_FUNCTIONS 8
#define MAX_HANDLES 64

static const char *release_file;
static int jobs;

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void die(const char *what, gearman_return_t rc, const char *msg) {
    printf("ERROR %s %s %s\n", what, gearman_strerror(rc), msg ? msg : "");
    exit(1);
}

static void wait_release(void) {
    struct stat st;
    double until = now() + RELEASE_WAIT_S;
    while (release_file && *release_file && stat(release_file, &st) != 0) {
        if (now() > until) {
            printf("RELEASE_TIMEOUT\n");
            return;
        }
        usleep(10000);
    }
}

/* ----------------------------------------------------------------------- worker */

/* handles the overrun behaviour has seen, to tell a first run from a rerun */
static char seen[MAX_HANDLES][GEARMAN_JOB_HANDLE_SIZE];
static int nseen;

static int seen_before(const char *handle) {
    for (int i = 0; i < nseen; i++)
        if (strcmp(seen[i], handle) == 0)
            return 1;
    if (nseen < MAX_HANDLES)
        snprintf(seen[nseen++], GEARMAN_JOB_HANDLE_SIZE, "%s", handle);
    return 0;
}

/* result returns a malloc'd copy of prefix+workload (libgearman frees it). */
static void *result(const char *prefix, const char *w, size_t wlen, size_t *size) {
    size_t plen = strlen(prefix);
    char *r = malloc(plen + wlen + 1);
    memcpy(r, prefix, plen);
    memcpy(r + plen, w, wlen);
    *size = plen + wlen;
    return r;
}

static void *work(gearman_job_st *job, void *context, size_t *size, gearman_return_t *ret) {
    const char *behaviour = context;
    const char *fn = gearman_job_function_name(job);
    const char *h = gearman_job_handle(job);
    const char *w = gearman_job_workload(job);
    size_t wlen = gearman_job_workload_size(job);
    void *r = NULL;

    jobs++;
    printf("START %s %s %s %.*s\n", fn, h, gearman_job_unique(job), (int)wlen, w);
    *ret = GEARMAN_SUCCESS;
    *size = 0;
    if (strcmp(behaviour, "reverse") == 0) {
        char *b = malloc(wlen + 1);
        for (size_t i = 0; i < wlen; i++)
            b[i] = w[wlen - 1 - i];
        r = b;
        *size = wlen;
    } else if (strcmp(behaviour, "status") == 0) {
        gearman_return_t rc = gearman_job_send_status(job, 1, 3);
        if (rc != GEARMAN_SUCCESS)
            printf("SEND_STATUS_FAILED %s\n", gearman_strerror(rc));
        printf("STATUS_SENT %s\n", h);
        wait_release();
        r = result("status-done:", w, wlen, size);
    } else if (strcmp(behaviour, "hold") == 0) {
        wait_release();
        r = result("held:", w, wlen, size);
    } else if (strcmp(behaviour, "overrun") == 0) {
        if (seen_before(h)) {
            r = result("again:", w, wlen, size);
        } else {
            usleep(2500 * 1000);
            printf("OVERRAN %s\n", h);
            r = result("late:", w, wlen, size);
        }
    } else {
        printf("UNKNOWN_BEHAVIOUR %s\n", behaviour);
        *ret = GEARMAN_WORK_FAIL;
    }
    printf("END %s %s\n", fn, h);
    return r;
}

static int run_worker(const char *host, in_port_t port, int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: capi HOST PORT worker MAXJOBS FN=BEHAVIOUR[@TIMEOUT]...\n");
        return 2;
    }
    int max = atoi(argv[0]);
    gearman_worker_st *worker = gearman_worker_create(NULL);
    if (worker == NULL)
        die("gearman_worker_create", GEARMAN_MEMORY_ALLOCATION_FAILURE, NULL);
    gearman_return_t rc = gearman_worker_add_server(worker, host, port);
    if (rc != GEARMAN_SUCCESS)
        die("gearman_worker_add_server", rc, gearman_worker_error(worker));
    gearman_worker_set_timeout(worker, WORKER_POLL_MS);

    for (int i = 1; i < argc && i <= MAX_FUNCTIONS; i++) {
        char *spec = argv[i];
        char *eq = strchr(spec, '=');
        if (eq == NULL) {
            fprintf(stderr, "bad spec %s\n", spec);
            return 2;
        }
        *eq = '\0';
        char *behaviour = eq + 1;
        uint32_t timeout = 0;
        char *at = strchr(behaviour, '@');
        if (at != NULL) {
            *at = '\0';
            timeout = (uint32_t)strtoul(at + 1, NULL, 10);
        }
        rc = gearman_worker_add_function(worker, spec, timeout, work, behaviour);
        if (rc != GEARMAN_SUCCESS)
            die("gearman_worker_add_function", rc, gearman_worker_error(worker));
    }
    /* Registration goes out with the first grab; echo first so that READY
     * means connected (the test then waits for the admin status to list us). */
    rc = gearman_worker_echo(worker, "ping", 4);
    if (rc != GEARMAN_SUCCESS)
        die("gearman_worker_echo", rc, gearman_worker_error(worker));
    printf("READY\n");

    double deadline = now() + WORKER_LIFETIME_S;
    while (jobs < max && now() < deadline) {
        rc = gearman_worker_work(worker);
        if (rc == GEARMAN_SUCCESS || rc == GEARMAN_TIMEOUT || rc == GEARMAN_IO_WAIT || rc == GEARMAN_NO_JOBS)
            continue;
        printf("WORK_ERROR %s %s\n", gearman_strerror(rc), gearman_worker_error(worker));
        usleep(100 * 1000);
    }
    printf("EXIT %d\n", jobs);
    gearman_worker_free(worker);
    return 0;
}

/* ----------------------------------------------------------------------- client */

static gearman_return_t on_created(gearman_task_st *task) {
    printf("CREATED %s %s\n", (const char *)gearman_task_context(task), gearman_task_job_handle(task));
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_complete(gearman_task_st *task) {
    printf("COMPLETE %s %.*s\n", (const char *)gearman_task_context(task),
           (int)gearman_task_data_size(task), (const char *)gearman_task_data(task));
    return GEARMAN_SUCCESS;
}

static gearman_return_t on_fail(gearman_task_st *task) {
    printf("FAIL %s\n", (const char *)gearman_task_context(task));
    return GEARMAN_SUCCESS;
}

static int prio_index(const char *p) {
    if (strcmp(p, "normal") == 0)
        return 0;
    if (strcmp(p, "high") == 0)
        return 1;
    if (strcmp(p, "low") == 0)
        return 2;
    fprintf(stderr, "bad priority %s\n", p);
    exit(2);
}

static int run_client(gearman_client_st *client, const char *cmd, int argc, char **argv) {
    gearman_return_t rc;
    if ((strcmp(cmd, "do") == 0 || strcmp(cmd, "bg") == 0) && argc >= 3) {
        int prio = prio_index(argv[0]);
        const char *fn = argv[1], *w = argv[2], *unique = argc > 3 ? argv[3] : NULL;
        if (strcmp(cmd, "do") == 0) {
            typedef void *(*do_fn)(gearman_client_st *, const char *, const char *, const void *, size_t, size_t *,
                                   gearman_return_t *);
            do_fn f[] = {gearman_client_do, gearman_client_do_high, gearman_client_do_low};
            size_t size = 0;
            void *r = f[prio](client, fn, unique, w, strlen(w), &size, &rc);
            printf("RESULT %s %.*s\n", gearman_strerror(rc), (int)size, r ? (const char *)r : "");
            free(r);
        } else {
            typedef gearman_return_t (*bg_fn)(gearman_client_st *, const char *, const char *, const void *, size_t,
                                              gearman_job_handle_t);
            bg_fn f[] = {gearman_client_do_background, gearman_client_do_high_background,
                         gearman_client_do_low_background};
            gearman_job_handle_t h;
            rc = f[prio](client, fn, unique, w, strlen(w), h);
            if (rc != GEARMAN_SUCCESS)
                die("background submit", rc, gearman_client_error(client));
            printf("HANDLE %s\n", h);
        }
    } else if (strcmp(cmd, "epoch") == 0 && argc == 3) {
        time_t when = time(NULL) + atoi(argv[1]);
        gearman_task_attr_t attr = gearman_task_attr_init_epoch(when, GEARMAN_JOB_PRIORITY_NORMAL);
        gearman_argument_t arg = gearman_argument_make(NULL, 0, argv[2], strlen(argv[2]));
        gearman_task_st *task = gearman_execute(client, argv[0], strlen(argv[0]), NULL, 0, &attr, &arg, NULL);
        if (task == NULL) {
            printf("ERROR gearman_execute %s\n", gearman_client_error(client));
            exit(1);
        }
        if (gearman_task_return(task) != GEARMAN_SUCCESS)
            die("gearman_execute task", gearman_task_return(task), gearman_client_error(client));
        printf("HANDLE %s %lld\n", gearman_task_job_handle(task), (long long)when);
        gearman_task_free(task);
    } else if (strcmp(cmd, "status") == 0 && argc == 1) {
        bool known = false, running = false;
        uint32_t num = 0, den = 0;
        rc = gearman_client_job_status(client, argv[0], &known, &running, &num, &den);
        if (rc != GEARMAN_SUCCESS)
            die("gearman_client_job_status", rc, gearman_client_error(client));
        printf("STATUS %d %d %u %u\n", known, running, num, den);
    } else if (strcmp(cmd, "tasks") == 0 && argc >= 2) {
        const char *unique = NULL;
        if (strncmp(argv[0], "--unique=", 9) == 0) {
            unique = argv[0] + 9;
            argv++;
            argc--;
        }
        gearman_client_set_created_fn(client, on_created);
        gearman_client_set_complete_fn(client, on_complete);
        gearman_client_set_fail_fn(client, on_fail);
        for (int i = 0; i + 1 < argc; i += 2) {
            const char *w = argv[i + 1];
            if (gearman_client_add_task(client, NULL, (void *)w, argv[i], unique, w, strlen(w), &rc) == NULL)
                die("gearman_client_add_task", rc, gearman_client_error(client));
        }
        rc = gearman_client_run_tasks(client);
        printf("RUNTASKS %s\n", gearman_strerror(rc));
    } else {
        fprintf(stderr, "bad command %s\n", cmd);
        return 2;
    }
    printf("OK\n");
    return 0;
}

int main(int argc, char **argv) {
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (argc < 4) {
        fprintf(stderr, "usage: capi HOST PORT COMMAND ARGS...\n");
        return 2;
    }
    const char *host = argv[1];
    in_port_t port = (in_port_t)atoi(argv[2]);
    release_file = getenv("RELEASE_FILE");
    if (strcmp(argv[3], "worker") == 0)
        return run_worker(host, port, argc - 4, argv + 4);

    gearman_client_st *client = gearman_client_create(NULL);
    if (client == NULL)
        die("gearman_client_create", GEARMAN_MEMORY_ALLOCATION_FAILURE, NULL);
    gearman_return_t rc = gearman_client_add_server(client, host, port);
    if (rc != GEARMAN_SUCCESS)
        die("gearman_client_add_server", rc, gearman_client_error(client));
    gearman_client_set_timeout(client, CLIENT_TIMEOUT_MS);
    int code = run_client(client, argv[3], argc - 4, argv + 4);
    gearman_client_free(client);
    return code;
}
