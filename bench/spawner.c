/*
 * spawner: start N idle processes with small, varied RSS and distinctive argv, for benchmarks.
 *
 * Why C: 5000 Python interpreters would cost gigabytes and minutes; a tiny C child costs a few
 * hundred KiB and well under a millisecond to start, so the machine under test looks like a
 * busy host (many small processes) rather than like the benchmark.
 *
 * usage: spawner N [CHURN_PERIOD_MS EXIT_PERMILLE RSS_PERMILLE]
 *   Prints "ready N" on stdout once all N children are up, then waits. With a churn period,
 *   every period it kills EXIT_PERMILLE/1000 of the children and starts replacements, and asks
 *   RSS_PERMILLE/1000 of them to change their RSS (SIGUSR1). SIGTERM/SIGINT: kill all children
 *   and exit. Every child dies with the spawner (PR_SET_PDEATHSIG), so nothing is left behind.
 *
 * A child is this same binary re-executed as "memtrail-bench-idle --slot I --kib K".
 */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t resize_wanted = 0;
static volatile sig_atomic_t stop_wanted = 0;

static void on_usr1(int sig) { (void)sig; resize_wanted = 1; }
static void on_stop(int sig) { (void)sig; stop_wanted = 1; }

/* Map and touch `kib` KiB of anonymous memory: the RSS a real small daemon would have. */
static void *touch(size_t kib, size_t *len) {
    *len = kib * 1024;
    if (*len == 0) return NULL;
    char *p = mmap(NULL, *len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { *len = 0; return NULL; }
    for (size_t i = 0; i < *len; i += 4096) p[i] = (char)i;
    return p;
}

static int child_main(int argc, char **argv) {
    size_t kib = argc > 4 ? strtoul(argv[4], NULL, 10) : 256;
    unsigned seed = argc > 2 ? (unsigned)strtoul(argv[2], NULL, 10) : 1;
    size_t len;
    void *mem;
    signal(SIGUSR1, on_usr1);
    prctl(PR_SET_NAME, "mt-bench-idle");
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() == 1) return 0;
    mem = touch(kib, &len);
    for (;;) {
        pause();
        if (resize_wanted) {
            resize_wanted = 0;
            if (mem) munmap(mem, len);
            kib = 64 + (size_t)(rand_r(&seed) % 2048);
            mem = touch(kib, &len);
        }
    }
}

static char self_path[4096];
static pid_t *kids;
static long nkids;
static unsigned rng = 12345;
static unsigned kib_span = 960; /* children touch 64 + [0, kib_span) KiB */

static pid_t start_child(long slot) {
    char s_slot[32], s_kib[32];
    pid_t pid;
    snprintf(s_slot, sizeof s_slot, "%ld", slot);
    snprintf(s_kib, sizeof s_kib, "%u", 64 + rand_r(&rng) % kib_span);
    pid = fork();
    if (pid == 0) {
        char *args[] = {"memtrail-bench-idle", "--slot", s_slot, "--kib", s_kib, NULL};
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        execv(self_path, args);
        _exit(127);
    }
    return pid;
}

static void kill_all(void) {
    for (long i = 0; i < nkids; i++)
        if (kids[i] > 0) kill(kids[i], SIGKILL);
    while (wait(NULL) > 0 || errno == EINTR) {}
}

int main(int argc, char **argv) {
    if (strcmp(argv[0], "memtrail-bench-idle") == 0) return child_main(argc, argv);
    if (argc < 2) {
        fprintf(stderr, "usage: spawner N [CHURN_PERIOD_MS EXIT_PERMILLE RSS_PERMILLE]\n");
        return 2;
    }
    ssize_t n = readlink("/proc/self/exe", self_path, sizeof self_path - 1);
    if (n <= 0) { perror("readlink /proc/self/exe"); return 1; }
    self_path[n] = 0;
    nkids = strtol(argv[1], NULL, 10);
    /* Big crowds (20,000) would touch ~11 GiB at the default span: MEMTRAIL_BENCH_KIB_SPAN
       shrinks what each child touches (its statm costs the same to read at any size). */
    if (getenv("MEMTRAIL_BENCH_KIB_SPAN")) {
        long span = strtol(getenv("MEMTRAIL_BENCH_KIB_SPAN"), NULL, 10);
        if (span > 0) kib_span = (unsigned)span;
    }
    long period_ms = argc > 2 ? strtol(argv[2], NULL, 10) : 0;
    long exit_pm = argc > 3 ? strtol(argv[3], NULL, 10) : 0;
    long rss_pm = argc > 4 ? strtol(argv[4], NULL, 10) : 0;
    kids = calloc((size_t)(nkids > 0 ? nkids : 1), sizeof *kids);
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    prctl(PR_SET_PDEATHSIG, SIGTERM);

    for (long i = 0; i < nkids && !stop_wanted; i++) {
        kids[i] = start_child(i);
        if (kids[i] < 0) { perror("fork"); kill_all(); return 1; }
    }
    /* Ready once every child has exec-ed: its /proc/PID/cmdline shows the new argv. */
    for (long i = 0; i < nkids && !stop_wanted; i++) {
        char path[64], buf[64];
        snprintf(path, sizeof path, "/proc/%d/cmdline", (int)kids[i]);
        for (int tries = 0; tries < 5000; tries++) {
            FILE *f = fopen(path, "r");
            size_t got = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
            if (f) fclose(f);
            buf[got] = 0;
            if (got && strcmp(buf, "memtrail-bench-idle") == 0) break;
            usleep(1000);
        }
    }
    printf("ready %ld\n", nkids);
    fflush(stdout);

    while (!stop_wanted) {
        if (period_ms <= 0) { pause(); continue; }
        struct timespec ts = {period_ms / 1000, (period_ms % 1000) * 1000000L};
        nanosleep(&ts, NULL);
        if (stop_wanted) break;
        long nexit = nkids * exit_pm / 1000, nrss = nkids * rss_pm / 1000;
        for (long k = 0; k < nexit; k++) {
            long i = rand_r(&rng) % nkids;
            if (kids[i] > 0) { kill(kids[i], SIGKILL); waitpid(kids[i], NULL, 0); }
            kids[i] = start_child(i);
        }
        for (long k = 0; k < nrss; k++) {
            long i = rand_r(&rng) % nkids;
            if (kids[i] > 0) kill(kids[i], SIGUSR1);
        }
        while (waitpid(-1, NULL, WNOHANG) > 0) {}
    }
    kill_all();
    return 0;
}
