/*
 * bench/floor.c: the floor under a blocking ping-pong, per socket transport.
 *
 * Usage: floor [-w WARMUP] [-T TIMEOUT] [-s thread|fork] [-a] [-A]
 *              TRANSPORT SIZE DURATION [CPU|off]
 *   TRANSPORT  udp | tcp | unix | unix-dgram | seqpacket | all
 *   SIZE       bytes per message, each way (8 .. 65507 for udp, .. 1 MiB else)
 *   DURATION   seconds measured (after WARMUP), e.g. 2 or 0.5; at most 60
 *   CPU        the CPU that client and server share (default: the first one
 *              this process may run on); off: no pinning
 *   -w SECS    warm-up before measuring (default 0.2; round trips not counted)
 *   -T SECS    receive timeout (SO_RCVTIMEO, default 1): a UDP reply that
 *              does not come within it counts as lost. -T 0: no receive
 *              timeouts at all, as sockperf (which sets none); the run is
 *              then bounded by a watchdog (SIGALRM at WARMUP + DURATION +
 *              10 s) instead, and a lost reply ends it with an error
 *   -s MODE    the echo server on a thread of this process (default, as msg
 *              bench's built-in listeners) or in a forked child (two
 *              processes, as sockperf's server and client)
 *   -a         AF_UNIX in the abstract namespace instead of socket files in
 *              a temporary directory (which is removed afterwards)
 *   -A         the unix-dgram client autobinds (an abstract name the kernel
 *              picks), as msg's does, while the server keeps its socket
 *              file: the server's reply is then addressed without a path
 *              walk, as msg's listener's is (see unix= in the output)
 *
 * Output, one line per transport, on stdout:
 *   transport=udp size=64 rtts=171234 lost=0 p50_us=11.52 p90_us=12.31
 *   p99_us=14.02 mean_us=11.71 min_us=10.80 max_us=61.20 cpu=0 server=thread
 *   unix=path rcvtimeo=1.000 duration_s=2.000
 *
 * Built by bench/compare.sh with `cc -O2 -o floor bench/floor.c -lpthread`.
 * No msg code: this is the comparison msg's blocking engine is held to.
 *
 * What makes it a floor. A client and an echo server, both pinned to one CPU,
 * one message in flight. The server blocks in recv (or recvfrom) and answers
 * with send (or sendto, to whoever sent it: a server that serves any peer, as
 * sockperf's and msg's do). The client blocks in send and recv on a connected
 * socket. Per round trip the client does exactly what sockperf's ping-pong
 * inner loop does in the kernel -- one send, one blocking receive (a stream
 * kind: as many as it takes to read SIZE bytes back), two context switches on
 * the shared core -- and in user space only what it must: an 8-byte sequence
 * number written into the payload and checked in the reply (so a late UDP
 * reply is not taken for the next one), one clock_gettime(CLOCK_MONOTONIC)
 * read per round trip (the end of one round trip is the start of the next),
 * and one 4-byte store of the difference into a preallocated array. No
 * header to build or parse, no histogram, no allocation, no locks, no
 * callbacks; percentiles are computed after the clock stops. Anything a real
 * tool does beyond this shows up as its ratio to this program.
 *
 * One thing here is not in sockperf's loop: the receive timeout. A blocking
 * receive with SO_RCVTIMEO sleeps with a kernel timer armed, and disarms it
 * on wake-up, on both sides of every round trip; sockperf sleeps without
 * one. msg's blocking engine sets SO_RCVTIMEO on both sides too, so the
 * default here holds msg to the floor of the same design; -T 0 gives the
 * timer-free floor that sockperf runs at, and the difference is what the
 * timeouts cost.
 *
 * Bounded: each run ends by time or when the sample array is full; every
 * receive and send has a timeout (SO_RCVTIMEO, SO_SNDTIMEO); a UDP round trip
 * whose reply times out is counted in lost= and not measured; more than 1000
 * lost, or any timeout on a reliable transport, ends the run with an error.
 * With -T 0 a watchdog ends a run that stalls. The server stops when the
 * client says so (closes its connection, or sends an empty datagram), and
 * checks a stop flag and its own deadline at least every 100 ms in case that
 * is lost (with -T 0, shutdown() on its socket wakes it instead); a forked
 * server is killed and reaped, and dies with its parent (PR_SET_PDEATHSIG).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum { MAX_LOST = 1000, MAX_STALE = 1000, SERVER_TICK_MS = 100 };

struct transport {
	const char *name;
	int domain, type;
	int connected; /* listen/accept (tcp, unix, seqpacket) */
	int stream;    /* a byte stream: read until SIZE bytes are back */
};

static const struct transport TRANSPORTS[] = {
	{"udp", AF_INET, SOCK_DGRAM, 0, 0},
	{"tcp", AF_INET, SOCK_STREAM, 1, 1},
	{"unix", AF_UNIX, SOCK_STREAM, 1, 1},
	{"unix-dgram", AF_UNIX, SOCK_DGRAM, 0, 0},
	{"seqpacket", AF_UNIX, SOCK_SEQPACKET, 1, 0},
};
enum { N_TRANSPORTS = sizeof TRANSPORTS / sizeof TRANSPORTS[0] };

/* Settings, from the command line. */
static double opt_warmup = 0.2, opt_timeout = 1.0;
static int opt_fork, opt_abstract, opt_autobind;

static volatile sig_atomic_t interrupted, watchdog;
static void on_signal(int sig)
{
	if (sig == SIGALRM)
		watchdog = 1;
	else
		interrupted = 1;
}

static void die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static void fail(const char *what)
{
	fprintf(stderr, "floor: %s\n", what);
	exit(1);
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void set_timeouts(int fd, double rcv, double snd)
{
	if (opt_timeout == 0)
		return; /* -T 0: sleep without a timer, as sockperf */
	struct timeval r = {(time_t)rcv, (suseconds_t)((rcv - (double)(time_t)rcv) * 1e6)};
	struct timeval s = {(time_t)snd, (suseconds_t)((snd - (double)(time_t)snd) * 1e6)};
	if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &r, sizeof r) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &s, sizeof s) < 0)
		die("setsockopt SO_RCVTIMEO/SO_SNDTIMEO");
}

static void nodelay(int fd)
{
	int one = 1;
	if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0)
		die("setsockopt TCP_NODELAY");
}

/* ------------------------------------------------------------ addresses */

struct endpoint {
	struct sockaddr_storage addr;
	socklen_t len;
};

static char tmpdir[256]; /* socket files live here unless -a */
static pid_t tmpdir_owner;

/* At any exit of the process that made it (an error included, not a forked
 * server's): the socket files and the directory go. */
static void remove_tmpdir(void)
{
	char path[sizeof tmpdir + 16];
	if (tmpdir[0] == '\0' || getpid() != tmpdir_owner)
		return;
	snprintf(path, sizeof path, "%s/server.sock", tmpdir);
	unlink(path);
	snprintf(path, sizeof path, "%s/client.sock", tmpdir);
	unlink(path);
	rmdir(tmpdir);
}

static void unix_endpoint(struct endpoint *e, const char *tag)
{
	static unsigned serial;
	struct sockaddr_un *un = (struct sockaddr_un *)&e->addr;
	memset(e, 0, sizeof *e);
	un->sun_family = AF_UNIX;
	if (opt_abstract) {
		/* Abstract: a leading NUL, no file, gone with the socket. */
		int n = snprintf(un->sun_path + 1, sizeof un->sun_path - 1, "msg-floor-%d-%u-%s",
				 (int)getpid(), serial++, tag);
		e->len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)n);
	} else {
		int n = snprintf(un->sun_path, sizeof un->sun_path, "%s/%s", tmpdir, tag);
		if (n < 0 || (size_t)n >= sizeof un->sun_path)
			fail("temporary directory path too long for a Unix socket (set TMPDIR)");
		e->len = (socklen_t)sizeof *un;
	}
}

static void unlink_endpoint(const struct endpoint *e)
{
	const struct sockaddr_un *un = (const struct sockaddr_un *)&e->addr;
	if (e->addr.ss_family == AF_UNIX && un->sun_path[0] != '\0')
		unlink(un->sun_path);
}

/* ------------------------------------------------------------ the server */

struct server {
	const struct transport *t;
	int fd; /* bound (and listening) before the client starts */
	size_t cap;
	double deadline;
	atomic_int stop;
};

/* Send all of buf (a stream may take it in pieces). 0, or -1 on error. */
static int send_all(int fd, const char *buf, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, buf, len, MSG_NOSIGNAL);
		if (n <= 0)
			return -1;
		buf += n;
		len -= (size_t)n;
	}
	return 0;
}

static int server_should_stop(struct server *s)
{
	return atomic_load_explicit(&s->stop, memory_order_relaxed) || now_s() > s->deadline;
}

/* The echo loop. Blocks in recv/recvfrom; answers every message, byte for
 * byte, to whoever sent it. Ends on close, an empty datagram, an error, or
 * (checked whenever a 100 ms receive timeout passes) the stop flag or the
 * deadline. */
static void serve(struct server *s)
{
	char *buf = malloc(s->cap);
	if (!buf)
		fail("out of memory");
	int fd = s->fd;
	if (s->t->connected) {
		for (;;) {
			fd = accept(s->fd, NULL, NULL);
			if (fd >= 0)
				break;
			if ((errno != EAGAIN && errno != EINTR) || server_should_stop(s))
				goto out;
		}
		if (s->t->domain == AF_INET)
			nodelay(fd);
		set_timeouts(fd, SERVER_TICK_MS / 1000.0, opt_timeout);
	}
	for (;;) {
		struct sockaddr_storage from;
		socklen_t fromlen = sizeof from;
		ssize_t n = s->t->connected ? recv(fd, buf, s->cap, 0)
					    : recvfrom(fd, buf, s->cap, 0, (struct sockaddr *)&from, &fromlen);
		if (n > 0) {
			int rc = s->t->connected ? send_all(fd, buf, (size_t)n)
				 : (sendto(fd, buf, (size_t)n, 0, (struct sockaddr *)&from, fromlen) == n ? 0 : -1);
			if (rc < 0 && s->t->connected)
				break; /* the client went away */
			continue;  /* a datagram reply that failed: the client counts it lost */
		}
		if (n == 0)
			break; /* closed, or the client's empty "stop" datagram */
		if ((errno != EAGAIN && errno != EINTR) || server_should_stop(s))
			break;
	}
	if (fd != s->fd)
		close(fd);
out:
	free(buf);
}

static void *server_thread(void *arg)
{
	serve(arg);
	return NULL;
}

/* ------------------------------------------------------------ the client */

enum rt { RT_OK, RT_LOST, RT_ERR };

/* One round trip: SIZE bytes out, SIZE bytes back, the sequence number in
 * the first 8 checked. */
static enum rt round_trip(const struct transport *t, int fd, char *out, char *in, size_t size,
			  size_t cap, uint64_t seq)
{
	memcpy(out, &seq, sizeof seq);
	if (t->stream) {
		if (send_all(fd, out, size) < 0)
			return RT_ERR;
		size_t got = 0;
		while (got < size) {
			ssize_t n = recv(fd, in + got, size - got, 0);
			if (n <= 0)
				return RT_ERR; /* closed, timed out, or failed: a stream is out of step */
			got += (size_t)n;
		}
		return memcmp(in, &seq, sizeof seq) == 0 ? RT_OK : RT_ERR;
	}
	if (send(fd, out, size, 0) != (ssize_t)size)
		return t->type == SOCK_DGRAM && t->domain == AF_INET && errno == ECONNREFUSED ? RT_LOST : RT_ERR;
	for (int stale = 0; stale < MAX_STALE; stale++) {
		ssize_t n = recv(fd, in, cap, 0);
		if (n < 0)
			return errno == EAGAIN || errno == EWOULDBLOCK ? RT_LOST : RT_ERR;
		if ((size_t)n == size && memcmp(in, &seq, sizeof seq) == 0)
			return RT_OK;
		/* An earlier round trip's late reply: not this one's. */
	}
	return RT_ERR;
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
	return (x > y) - (x < y);
}

/* Nearest rank: the smallest sample with at least p of them at or below it. */
static double pct_us(const uint32_t *sorted, size_t n, double p)
{
	size_t rank = (size_t)(p * (double)n + 0.999999999);
	if (rank < 1)
		rank = 1;
	if (rank > n)
		rank = n;
	return sorted[rank - 1] / 1000.0;
}

static int connect_client(const struct transport *t, const struct endpoint *server,
			  struct endpoint *self)
{
	int fd = socket(t->domain, t->type | SOCK_CLOEXEC, 0);
	if (fd < 0)
		die("socket (client)");
	if (t->domain == AF_INET && t->type == SOCK_STREAM)
		nodelay(fd);
	if (t->domain == AF_UNIX && t->type == SOCK_DGRAM) {
		/* An unbound AF_UNIX datagram socket has no address to reply to.
		 * Autobind: an address of the family alone, and the kernel picks
		 * an abstract name (nothing to unlink afterwards). */
		if (opt_autobind) {
			self->addr.ss_family = AF_UNIX;
			self->len = (socklen_t)sizeof(sa_family_t);
		} else {
			unix_endpoint(self, "client.sock");
		}
		if (bind(fd, (struct sockaddr *)&self->addr, self->len) < 0)
			die("bind (unix-dgram client)");
	}
	set_timeouts(fd, opt_timeout, opt_timeout);
	if (connect(fd, (const struct sockaddr *)&server->addr, server->len) < 0)
		die("connect");
	return fd;
}

static int run(const struct transport *t, size_t size, double duration, long cpu)
{
	struct endpoint srv_addr, cli_addr;
	memset(&cli_addr, 0, sizeof cli_addr);
	size_t cap = size > 65536 ? size : 65536;

	/* The server's socket is bound (and listening) before the client
	 * connects, so there is nothing to wait for. */
	int sfd = socket(t->domain, t->type | SOCK_CLOEXEC, 0);
	if (sfd < 0)
		die("socket (server)");
	if (t->domain == AF_INET) {
		struct sockaddr_in *in = (struct sockaddr_in *)&srv_addr.addr;
		memset(&srv_addr, 0, sizeof srv_addr);
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		in->sin_port = 0;
		srv_addr.len = sizeof *in;
		if (t->type == SOCK_STREAM)
			nodelay(sfd); /* inherited by the accepted socket; set there too */
	} else {
		unix_endpoint(&srv_addr, "server.sock");
	}
	if (bind(sfd, (struct sockaddr *)&srv_addr.addr, srv_addr.len) < 0)
		die("bind (server)");
	if (t->domain == AF_INET) {
		srv_addr.len = sizeof srv_addr.addr;
		if (getsockname(sfd, (struct sockaddr *)&srv_addr.addr, &srv_addr.len) < 0)
			die("getsockname");
	}
	if (t->connected && listen(sfd, 1) < 0)
		die("listen");
	set_timeouts(sfd, SERVER_TICK_MS / 1000.0, opt_timeout);

	struct server srv = {.t = t, .fd = sfd, .cap = cap,
			     .deadline = now_s() + opt_warmup + duration + 10 * opt_timeout + 5};
	atomic_init(&srv.stop, 0);
	pthread_t thread;
	pid_t child = -1;
	if (opt_fork) {
		fflush(stdout);
		pid_t parent = getpid();
		child = fork();
		if (child < 0)
			die("fork");
		if (child == 0) {
			prctl(PR_SET_PDEATHSIG, SIGKILL);
			if (getppid() != parent)
				_exit(0);
			signal(SIGINT, SIG_IGN);
			signal(SIGTERM, SIG_DFL);
			serve(&srv);
			_exit(0);
		}
	} else {
		/* Signals go to the client (the main thread) only. */
		sigset_t block, old;
		sigemptyset(&block);
		sigaddset(&block, SIGINT);
		sigaddset(&block, SIGTERM);
		sigaddset(&block, SIGALRM);
		pthread_sigmask(SIG_BLOCK, &block, &old);
		int rc = pthread_create(&thread, NULL, server_thread, &srv);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0) {
			errno = rc;
			die("pthread_create");
		}
	}

	int fd = connect_client(t, &srv_addr, &cli_addr);
	if (opt_timeout == 0) {
		/* No receive timeouts: the watchdog interrupts a stalled receive. */
		struct itimerval w = {{0, 0}, {(time_t)(opt_warmup + duration) + 10, 0}};
		setitimer(ITIMER_REAL, &w, NULL);
	}
	char *out = calloc(1, cap), *in = malloc(cap);
	/* At most one round trip per 2 µs: more than any kernel manages between
	 * two threads on one core, so the array is a bound, not a limit. */
	size_t max = (size_t)(duration * 500000.0) + 1000;
	uint32_t *samples = malloc(max * sizeof *samples);
	if (!out || !in || !samples)
		fail("out of memory");
	for (size_t i = sizeof(uint64_t); i < size; i++)
		out[i] = (char)('a' + i % 26);

	uint64_t seq = 0, lost = 0;
	size_t n = 0;
	const char *error = NULL;
	double start = now_s(), end_warm = start + opt_warmup;
	/* Warm-up: the same round trips, not measured. */
	while (!interrupted && !watchdog && now_s() < end_warm) {
		enum rt r = round_trip(t, fd, out, in, size, cap, ++seq);
		if (r == RT_ERR) {
			error = "round trip failed during warm-up";
			break;
		}
	}
	/* The measured loop: one clock read per round trip. */
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	uint64_t t0 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
	uint64_t end = t0 + (uint64_t)(duration * 1e9);
	while (!error && !interrupted && !watchdog && n < max) {
		enum rt r = round_trip(t, fd, out, in, size, cap, ++seq);
		clock_gettime(CLOCK_MONOTONIC, &ts);
		uint64_t t1 = (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
		if (r == RT_OK) {
			uint64_t d = t1 - t0;
			samples[n++] = d > UINT32_MAX ? UINT32_MAX : (uint32_t)d;
		} else if (r == RT_LOST && !t->connected) {
			if (++lost > MAX_LOST)
				error = "more than 1000 replies lost";
		} else {
			error = t->stream ? "stream round trip failed (timed out, closed or out of step)"
					  : "round trip failed";
		}
		t0 = t1;
		if (t1 >= end)
			break;
	}
	int err_no = errno;
	double measured = now_s() - end_warm;
	if (opt_timeout == 0) {
		struct itimerval off = {{0, 0}, {0, 0}};
		setitimer(ITIMER_REAL, &off, NULL);
		if (watchdog)
			error = "stalled until the watchdog (-T 0: no receive timeout)";
	}

	/* Stop the server: close a connection, or an empty datagram; the flag
	 * and its deadline cover a lost one. */
	atomic_store(&srv.stop, 1);
	if (!t->connected)
		(void)send(fd, out, 0, MSG_DONTWAIT);
	close(fd);
	if (opt_fork) {
		kill(child, SIGKILL);
		waitpid(child, NULL, 0);
	} else {
		/* A server asleep without a timeout, whose empty datagram was
		 * lost, wakes up to this (recvfrom returns 0). */
		if (!t->connected)
			shutdown(sfd, SHUT_RDWR);
		pthread_join(thread, NULL);
	}
	close(sfd);
	unlink_endpoint(&srv_addr);
	unlink_endpoint(&cli_addr);
	free(out);
	free(in);

	if (error || interrupted) {
		if (error)
			fprintf(stderr, "floor: %s %zu B: %s (%s)\n", t->name, size, error, strerror(err_no));
		else
			fprintf(stderr, "floor: interrupted\n");
		free(samples);
		return 1;
	}
	if (n == 0) {
		fprintf(stderr, "floor: %s %zu B: no round trip measured\n", t->name, size);
		free(samples);
		return 1;
	}
	char timeo[24] = "off";
	if (opt_timeout > 0)
		snprintf(timeo, sizeof timeo, "%.3f", opt_timeout);
	char cpu_name[24] = "off";
	if (cpu >= 0)
		snprintf(cpu_name, sizeof cpu_name, "%ld", cpu);
	double sum = 0;
	for (size_t i = 0; i < n; i++)
		sum += samples[i];
	qsort(samples, n, sizeof *samples, cmp_u32);
	printf("transport=%s size=%zu rtts=%zu lost=%llu p50_us=%.2f p90_us=%.2f p99_us=%.2f "
	       "mean_us=%.2f min_us=%.2f max_us=%.2f cpu=%s server=%s unix=%s rcvtimeo=%s duration_s=%.3f\n",
	       t->name, size, n, (unsigned long long)lost, pct_us(samples, n, 0.50),
	       pct_us(samples, n, 0.90), pct_us(samples, n, 0.99), sum / (double)n / 1000.0,
	       samples[0] / 1000.0, samples[n - 1] / 1000.0, cpu_name,
	       opt_fork ? "fork" : "thread",
	       opt_abstract ? "abstract" : opt_autobind && t->domain == AF_UNIX && t->type == SOCK_DGRAM ? "path+autobind" : "path",
	       timeo, measured);
	fflush(stdout);
	free(samples);
	return 0;
}

static void usage(void)
{
	fputs("usage: floor [-w WARMUP] [-T TIMEOUT] [-s thread|fork] [-a] [-A] TRANSPORT SIZE DURATION [CPU|off]\n"
	      "  TRANSPORT: udp, tcp, unix, unix-dgram, seqpacket or all; SIZE in bytes;\n"
	      "  DURATION, WARMUP, TIMEOUT in seconds (TIMEOUT 0: no receive timeouts)\n",
	      stderr);
	exit(2);
}

static double parse_secs(const char *s, double lo, double hi, const char *what)
{
	char *end;
	double v = strtod(s, &end);
	if (end == s || *end != '\0' || !(v >= lo && v <= hi)) {
		fprintf(stderr, "floor: %s must be seconds in [%g, %g], got '%s'\n", what, lo, hi, s);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	int c;
	while ((c = getopt(argc, argv, "w:T:s:aAh")) != -1) {
		switch (c) {
		case 'w': opt_warmup = parse_secs(optarg, 0, 60, "-w"); break;
		case 'T': opt_timeout = parse_secs(optarg, 0, 60, "-T"); break;
		case 's':
			if (strcmp(optarg, "thread") == 0)
				opt_fork = 0;
			else if (strcmp(optarg, "fork") == 0)
				opt_fork = 1;
			else
				usage();
			break;
		case 'a': opt_abstract = 1; break;
		case 'A': opt_autobind = 1; break;
		default: usage();
		}
	}
	if (argc - optind < 3 || argc - optind > 4)
		usage();
	const char *tname = argv[optind];
	char *end;
	long size = strtol(argv[optind + 1], &end, 10);
	if (*end != '\0' || size < 8 || size > (1 << 20)) {
		fprintf(stderr, "floor: SIZE must be 8 .. 1048576 bytes (8 for the sequence number)\n");
		return 2;
	}
	double duration = parse_secs(argv[optind + 2], 0.001, 60, "DURATION");

	int first = -1, last = -1;
	for (int i = 0; i < N_TRANSPORTS; i++) {
		if (strcmp(tname, "all") == 0 || strcmp(tname, TRANSPORTS[i].name) == 0) {
			if (first < 0)
				first = i;
			last = i;
		}
	}
	if (first < 0) {
		fprintf(stderr, "floor: unknown transport '%s'\n", tname);
		usage();
	}
	if (strcmp(tname, "udp") == 0 && size > 65507) {
		fprintf(stderr, "floor: a UDP datagram holds at most 65507 bytes\n");
		return 2;
	}

	/* Pin: both the client and the server (a thread inherits the mask, and
	 * so does a forked child) on one CPU, as msg bench --pin same. */
	long cpu = -1;
	cpu_set_t set;
	if (sched_getaffinity(0, sizeof set, &set) < 0)
		die("sched_getaffinity");
	if (argc - optind == 4 && strcmp(argv[optind + 3], "off") == 0) {
		cpu = -1;
	} else {
		if (argc - optind == 4) {
			cpu = strtol(argv[optind + 3], &end, 10);
			if (*end != '\0' || cpu < 0 || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &set)) {
				fprintf(stderr, "floor: CPU %s is not one this process may run on\n",
					argv[optind + 3]);
				return 2;
			}
		} else {
			for (cpu = 0; cpu < CPU_SETSIZE && !CPU_ISSET(cpu, &set); cpu++)
				;
		}
		CPU_ZERO(&set);
		CPU_SET(cpu, &set);
		if (sched_setaffinity(0, sizeof set, &set) < 0)
			die("sched_setaffinity");
	}

	struct sigaction sa;
	memset(&sa, 0, sizeof sa);
	sa.sa_handler = on_signal; /* no SA_RESTART: a blocked recv returns EINTR */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGALRM, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);

	if (!opt_abstract) {
		const char *base = getenv("TMPDIR");
		snprintf(tmpdir, sizeof tmpdir, "%s/msg-floor.XXXXXX", base && *base ? base : "/tmp");
		if (!mkdtemp(tmpdir))
			die("mkdtemp");
		tmpdir_owner = getpid();
		atexit(remove_tmpdir);
	}
	int rc = 0;
	for (int i = first; i <= last && !interrupted; i++) {
		if (TRANSPORTS[i].type == SOCK_DGRAM && TRANSPORTS[i].domain == AF_INET && size > 65507) {
			fprintf(stderr, "floor: udp skipped: a datagram holds at most 65507 bytes\n");
			continue;
		}
		rc |= run(&TRANSPORTS[i], (size_t)size, duration, cpu);
	}
	return rc || interrupted ? 1 : 0; /* remove_tmpdir runs at exit */
}
