/*
 * floor.c: the C floor. Each tick: readdir /proc, open/read/close every /proc/PID/statm.
 * Why: it shows how much of the per-process cost is the kernel (open/read/close) rather than
 * the interpreter, i.e. the least any /proc-based recorder can pay.
 * usage: floor INTERVAL_S STATUS_FILE  (status file: "ticks 0", rewritten after every tick)
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

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: floor INTERVAL_S STATUS_FILE\n"); return 2; }
    double interval = atof(argv[1]);
    int sfd = open(argv[2], O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (sfd < 0) { perror(argv[2]); return 2; }
    long ticks = 0;
    double next = now();
    char path[300], buf[256], status[64];
    for (;;) {
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
