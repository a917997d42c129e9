/*
 * floor.c: the C floors.
 *
 * Default: each tick, readdir /proc and open/read/close every /proc/PID/statm. It shows how
 * much of the per-process cost is the kernel rather than the interpreter: the least a
 * recorder that opens what it reads can pay.
 *
 * "held": each statm is opened once and re-read with pread every tick, and /proc is listed
 * again only when the last pid the kernel allocated (the last field of /proc/loadavg) moved;
 * when it moved forward by a few and /proc/stat's fork counter moved no more, the new pids are
 * opened by number instead (a thread's, exit_signal -1 in its stat, let go): the sampler's own
 * rules. That is one pread per process a tick and nothing else: the least any recorder that
 * reads every process's statm each tick can pay on this machine, whatever its language. How close the sampler gets to it, and how far that is below the plain floor,
 * depends on the kernel and the CPU (its caches), not on the sampler.
 *
 * "named": the held floor, and each new process is also named as a recorder must name it:
 * its stat, cmdline and cgroup read when it is first seen and once more a tick later (it may
 * have exec'd right after its fork), as the sampler does. Nothing is parsed or written: the
 * least a recorder that reads every process's statm each tick and says who each newcomer is
 * can pay here. On a churning host it is what the sampler's own rules cost in the kernel.
 *
 * usage: floor INTERVAL_S STATUS_FILE [held|named]  (status file: "ticks 0", rewritten each
 * tick)
 */
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static char path[300], buf[256];

/* The plain floor's tick. */
static void tick_open(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        snprintf(path, sizeof path, "/proc/%s/statm", e->d_name);
        int fd = open(path, O_RDONLY);
        if (fd < 0) continue;
        if (read(fd, buf, sizeof buf) < 0) { /* vanished: fine */ }
        close(fd);
    }
    if (d) closedir(d);
}

/* The held floor: fds[pid] is its statm descriptor (0: none), order[] the pids in listing order. */
static int *fds, *order, *old, norder, loadavg = -1, statfd = -1;
static long last_forks = -1;
static unsigned char *seen;
static long pid_max = 4194304;
static char cursor[64], last_cursor[64] = "";
static int named, started, *fresh, nfresh;  /* named: the pids first seen in the last tick */

/* A newcomer's name: the three files the sampler reads to identify it (stat, cmdline,
 * cgroup), each opened, read and closed. */
static void name(long pid) {
    static const char *const files[] = {"stat", "cmdline", "cgroup"};
    static char text[4096];
    for (int i = 0; i < 3; i++) {
        snprintf(path, sizeof path, "/proc/%ld/%s", pid, files[i]);
        int fd = open(path, O_RDONLY | O_CLOEXEC);
        if (fd < 0) return;  /* gone */
        if (read(fd, text, sizeof text) < 0) { /* gone: fine */ }
        close(fd);
    }
}

/* Held from this tick on: named now, and named again at the next tick. */
static void newcomer(long pid) {
    if (!named) return;
    name(pid);
    if (started) fresh[nfresh++] = (int)pid;  /* (those of the first listing: no second look) */
}

static void relist(void) {
    DIR *d = opendir("/proc");
    struct dirent *e;
    int nold = norder;
    memcpy(old, order, nold * sizeof *old);
    norder = 0;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] < '0' || e->d_name[0] > '9') continue;
        long pid = atol(e->d_name);
        if (pid <= 0 || pid >= pid_max) continue;
        if (!fds[pid]) {
            snprintf(path, sizeof path, "/proc/%s/statm", e->d_name);
            int fd = open(path, O_RDONLY | O_CLOEXEC);
            if (fd < 0) continue;
            fds[pid] = fd;
            newcomer(pid);
        }
        order[norder++] = (int)pid;
        seen[pid] = 1;
    }
    if (d) closedir(d);
    for (int i = 0; i < nold; i++)  /* gone since the last listing: let go of it */
        if (!seen[old[i]] && fds[old[i]]) { close(fds[old[i]]); fds[old[i]] = 0; }
    for (int i = 0; i < norder; i++) seen[order[i]] = 0;
}

/* /proc/stat's `processes` (forks since boot), or -1. */
static long forks(void) {
    static char st[1 << 22];  /* a many-core host's /proc/stat runs to megabytes */
    ssize_t n = pread(statfd, st, sizeof st - 1, 0);
    st[n > 0 ? n : 0] = 0;
    char *p = strstr(st, "\nprocesses ");
    return p ? atol(p + 11) : -1;
}

/* A pid given out since the last look: hold its statm unless it is a thread's own pid. */
static void probe(long pid) {
    if (fds[pid]) return;
    snprintf(path, sizeof path, "/proc/%ld/stat", pid);
    int sfd = open(path, O_RDONLY | O_CLOEXEC);
    if (sfd < 0) return;
    char st[1024];
    ssize_t n = read(sfd, st, sizeof st - 1);
    close(sfd);
    st[n > 0 ? n : 0] = 0;
    char *f = strrchr(st, ')');
    for (int field = 2; f && field < 38; field++) f = strchr(f + 1, ' ');
    if (!f || strncmp(f + 1, "-1 ", 3) == 0) return;  /* a thread (or gone) */
    snprintf(path, sizeof path, "/proc/%ld/statm", pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    fds[pid] = fd;
    order[norder++] = (int)pid;
    newcomer(pid);
}

static void tick_held(void) {
    if (named) {  /* the second look at last tick's newcomers, before this tick's come */
        for (int i = 0; i < nfresh; i++) name(fresh[i]);
        nfresh = 0;
    }
    ssize_t n = pread(loadavg, cursor, sizeof cursor - 1, 0);
    cursor[n > 0 ? n : 0] = 0;
    char *last = strrchr(cursor, ' ');
    long probe_from = 0, probe_to = -1;
    if (!last || strcmp(last, last_cursor) != 0) {
        long now_pid = last ? atol(last) : -1, was = atol(last_cursor), made = forks();
        long gap = now_pid - was;
        if (last_cursor[0] && gap > 0 && gap <= 64 + norder / 4 && made >= 0 &&
            last_forks >= 0 && made - last_forks <= gap && now_pid < pid_max) {
            probe_from = was + 1;  /* after the reads below, as the sampler does: a pid */
            probe_to = now_pid;    /* given out again is probed once its old holder is let go */
        } else {
            relist();
        }
        last_forks = made;
        snprintf(last_cursor, sizeof last_cursor, "%s", last ? last : "");
    }
    int kept = 0;
    for (int i = 0; i < norder; i++) {
        int pid = order[i];
        if (pread(fds[pid], buf, sizeof buf, 0) < 0) {  /* exited (ESRCH) */
            close(fds[pid]);
            fds[pid] = 0;
            continue;
        }
        order[kept++] = pid;
    }
    norder = kept;
    for (long pid = probe_from; pid <= probe_to; pid++) probe(pid);
    started = 1;
}

int main(int argc, char **argv) {
    if (argc < 3 || argc > 4 ||
        (argc == 4 && strcmp(argv[3], "held") != 0 && strcmp(argv[3], "named") != 0)) {
        fprintf(stderr, "usage: floor INTERVAL_S STATUS_FILE [held|named]\n");
        return 2;
    }
    double interval = atof(argv[1]);
    int sfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (sfd < 0) { perror(argv[2]); return 2; }
    int held = argc == 4;
    named = held && strcmp(argv[3], "named") == 0;
    if (held) {
        FILE *f = fopen("/proc/sys/kernel/pid_max", "r");
        if (f) { if (fscanf(f, "%ld", &pid_max) != 1) pid_max = 4194304; fclose(f); }
        fds = calloc(pid_max, sizeof *fds);
        order = calloc(pid_max, sizeof *order);
        old = calloc(pid_max, sizeof *old);
        seen = calloc(pid_max, 1);
        fresh = calloc(pid_max, sizeof *fresh);
        loadavg = open("/proc/loadavg", O_RDONLY | O_CLOEXEC);
        statfd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
        if (!fds || !order || !old || !seen || !fresh || loadavg < 0) { perror("held"); return 2; }
    }
    long ticks = 0;
    double next = now();
    char status[64];
    for (;;) {
        if (held) tick_held(); else tick_open();
        ticks++;
        int len = snprintf(status, sizeof status, "%ld 0\n", ticks);
        if (pwrite(sfd, status, len, 0) < 0) return 1;
        next += interval;
        double delay = next - now();
        if (delay > 0) {
            struct timespec ts = {(time_t)delay, (long)((delay - (time_t)delay) * 1e9)};
            nanosleep(&ts, NULL);
        } else {
            next = now();
        }
    }
}
