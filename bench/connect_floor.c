/*
 * bench/connect_floor.c: the floor under `msg bench --mode connect`.
 *
 * Usage: connect_floor TRANSPORT SIZE DURATION [fin|rst] [CPU|off]
 *   TRANSPORT  tcp | udp | unix
 *   SIZE       bytes of request and of reply (1 .. 65000)
 *   DURATION   seconds measured, after 0.15 s of warm-up; at most 60
 *   fin|rst    how TCP closes (default rst: SO_LINGER 0)
 *   CPU        the CPU client and server share (default 0); off: no pinning
 *
 * Output, one line on stdout:
 *   transport=tcp close=rst size=64 cycles=123456 conn_per_s=61234.5
 *   connect_p50_us=6.10 exchange_p50_us=5.20 cycle_p50_us=16.10
 *   cycle_p99_us=30.20
 *
 * Per cycle, what msg's cycle does in the kernel and nothing else in user
 * space: socket(), SO_RCVTIMEO and SO_SNDTIMEO (every wait bounded, as
 * msg's), connect() (a UDP socket: connect() sends nothing), one send of
 * SIZE bytes, a receive of SIZE bytes, SO_LINGER 0 for a TCP RST, close();
 * four clock reads. The server, a thread on the same CPU, serves one
 * connection after another (accept, read SIZE, write them back, read
 * until the client's close, close), as netperf's TCP_CRR server does;
 * for UDP it answers each datagram to its sender. No framing, no header:
 * msg's request is 32 bytes longer. Build: cc -O2 -o connect_floor
 * bench/connect_floor.c -lpthread
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_SAMPLES 4000000
#define MAX_SIZE 65000

static int kind;            /* SOCK_STREAM or SOCK_DGRAM */
static int family;          /* AF_INET or AF_UNIX */
static int rst = 1;
static size_t size;
static int cpu = 0;
static struct sockaddr_storage addr;
static socklen_t addr_len;
static atomic_int stop;
static char dir[] = "/tmp/connect_floor.XXXXXX";

static void die(const char *what) { perror(what); exit(1); }

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void timeouts(int fd, double secs) {
    struct timeval tv = {(time_t)secs, (suseconds_t)((secs - (time_t)secs) * 1e6)};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) ||
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv))
        die("setsockopt timeouts");
}

static void pin(void) {
    if (cpu < 0) return;
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

static int read_full(int fd, char *buf, size_t n) {
    size_t got = 0;
    while (got < n) {
        ssize_t r = recv(fd, buf + got, n - got, 0);
        if (r <= 0) return -1;
        got += (size_t)r;
    }
    return 0;
}

static void *server(void *listener_p) {
    int listener = *(int *)listener_p;
    static char buf[MAX_SIZE];
    pin();
    while (!atomic_load(&stop)) {
        if (kind == SOCK_DGRAM) {
            struct sockaddr_storage from;
            socklen_t from_len = sizeof from;
            ssize_t n = recvfrom(listener, buf, sizeof buf, 0, (struct sockaddr *)&from, &from_len);
            if (n > 0) sendto(listener, buf, (size_t)n, 0, (struct sockaddr *)&from, from_len);
            continue;
        }
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue; /* the 100 ms timeout: look at stop */
        timeouts(fd, 1);
        if (read_full(fd, buf, size) == 0) {
            send(fd, buf, size, MSG_NOSIGNAL);
            for (int i = 0; i < 64 && recv(fd, buf, sizeof buf, 0) > 0; i++) {}
        }
        close(fd);
    }
    return NULL;
}

static int cmp(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return (x > y) - (x < y);
}

static double pct(uint32_t *v, size_t n, double q) {
    if (n == 0) return 0;
    qsort(v, n, sizeof *v, cmp);
    return v[(size_t)(q * (double)(n - 1))] / 1000.0;
}

int main(int argc, char **argv) {
    if (argc < 4) {
        fprintf(stderr, "usage: %s tcp|udp|unix SIZE DURATION [fin|rst] [CPU|off]\n", argv[0]);
        return 2;
    }
    const char *transport = argv[1];
    size = (size_t)atol(argv[2]);
    double duration = atof(argv[3]);
    if (argc > 4) rst = strcmp(argv[4], "fin") != 0;
    if (argc > 5) cpu = strcmp(argv[5], "off") == 0 ? -1 : atoi(argv[5]);
    if (size < 1 || size > MAX_SIZE || duration <= 0 || duration > 60) {
        fprintf(stderr, "SIZE 1..%d, DURATION (0, 60]\n", MAX_SIZE);
        return 2;
    }
    if (!strcmp(transport, "tcp") || !strcmp(transport, "udp")) {
        family = AF_INET;
        kind = transport[0] == 't' ? SOCK_STREAM : SOCK_DGRAM;
        struct sockaddr_in *in = (struct sockaddr_in *)&addr;
        in->sin_family = AF_INET;
        in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        addr_len = sizeof *in;
    } else if (!strcmp(transport, "unix")) {
        family = AF_UNIX;
        kind = SOCK_STREAM;
        if (!mkdtemp(dir)) die("mkdtemp");
        struct sockaddr_un *un = (struct sockaddr_un *)&addr;
        un->sun_family = AF_UNIX;
        snprintf(un->sun_path, sizeof un->sun_path, "%s/s", dir);
        addr_len = sizeof *un;
    } else {
        fprintf(stderr, "transport: tcp, udp or unix\n");
        return 2;
    }
    int listener = socket(family, kind, 0);
    if (listener < 0) die("socket");
    if (bind(listener, (struct sockaddr *)&addr, addr_len)) die("bind");
    if (kind == SOCK_STREAM && listen(listener, 128)) die("listen");
    addr_len = sizeof addr;
    if (getsockname(listener, (struct sockaddr *)&addr, &addr_len)) die("getsockname");
    timeouts(listener, 0.1);
    pthread_t thread;
    if (pthread_create(&thread, NULL, server, &listener)) die("pthread_create");
    pin();

    static char req[MAX_SIZE], rep[MAX_SIZE];
    memset(req, 'm', size);
    uint32_t *connect_ns = malloc(MAX_SAMPLES * 4), *exchange_ns = malloc(MAX_SAMPLES * 4),
             *cycle_ns = malloc(MAX_SAMPLES * 4);
    if (!connect_ns || !exchange_ns || !cycle_ns) die("malloc");
    size_t n = 0;
    struct linger linger = {1, 0};
    double start = now(), measure_from = start + 0.15, end = measure_from + duration, t0 = start;
    while (n < MAX_SAMPLES) {
        if (t0 >= end) break;
        int fd = socket(family, kind, 0);
        if (fd < 0) die("socket");
        timeouts(fd, 1);
        double t1 = now();
        if (connect(fd, (struct sockaddr *)&addr, addr_len)) die("connect");
        double t2 = now();
        if (send(fd, req, size, MSG_NOSIGNAL) != (ssize_t)size) die("send");
        int ok = kind == SOCK_DGRAM ? recv(fd, rep, size, 0) == (ssize_t)size
                                    : read_full(fd, rep, size) == 0;
        if (!ok) die("recv");
        double t3 = now();
        if (rst && family == AF_INET && kind == SOCK_STREAM)
            setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, sizeof linger);
        close(fd);
        double t4 = now();
        if (t0 >= measure_from) {
            connect_ns[n] = (uint32_t)((t2 - t1) * 1e9);
            exchange_ns[n] = (uint32_t)((t3 - t2) * 1e9);
            cycle_ns[n] = (uint32_t)((t4 - t0) * 1e9);
            n++;
        } else {
            start = t4; /* the measurement starts after the warm-up */
        }
        t0 = t4;
    }
    double elapsed = t0 - start;
    atomic_store(&stop, 1);
    if (kind == SOCK_DGRAM) shutdown(listener, SHUT_RDWR);
    pthread_join(thread, NULL);
    if (family == AF_UNIX) {
        unlink(((struct sockaddr_un *)&addr)->sun_path);
        rmdir(dir);
    }
    printf("transport=%s close=%s size=%zu cycles=%zu conn_per_s=%.1f connect_p50_us=%.2f "
           "exchange_p50_us=%.2f cycle_p50_us=%.2f",
           transport, rst ? "rst" : "fin", size, n, n / elapsed, pct(connect_ns, n, 0.5),
           pct(exchange_ns, n, 0.5), pct(cycle_ns, n, 0.5));
    printf(" cycle_p99_us=%.2f\n", pct(cycle_ns, n, 0.99));
    return 0;
}
