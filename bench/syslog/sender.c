/*
 * Syslog load generator for bench/syslog: every message carries "seq=NNNNNNNNN",
 * so the harness counts loss and duplicates exactly from what a daemon stored.
 *
 *   sender tcp HOST PORT COUNT CONNS        flat out, octet-counted (RFC 6587), CONNS connections
 *   sender udp HOST PORT COUNT RATE         paced at RATE datagrams/s (sendmmsg, absolute schedule)
 *   sender tcp-paced HOST PORT COUNT RATE   paced at RATE messages/s on one connection (absolute schedule)
 *
 * Written in C so that one sender process outpaces any of the daemons on the
 * same 2 cores; prints one JSON line: {"sent": N, "seconds": S}.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MSG_MAX 512
#define TCP_CHUNK (256 * 1024)
#define UDP_BATCH 64

static char stamp[40];

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* One RFC 5424 message of about 200 bytes, like a forwarded application log line. */
static int format_msg(char *out, unsigned long seq) {
    return snprintf(out, MSG_MAX,
                    "<134>1 %s bench-host.example.net benchapp 4242 ID47 - "
                    "seq=%09lu user=alice action=login result=ok src=192.0.2.%lu "
                    "session=%08lx detail=\"the quick brown fox jumps over the lazy dog\"",
                    stamp, seq, seq % 250 + 1, seq * 2654435761UL & 0xffffffffUL);
}

static struct sockaddr_in target(const char *host, int port) {
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    if (inet_pton(AF_INET, host, &sa.sin_addr) != 1) {
        fprintf(stderr, "sender: bad IPv4 address %s\n", host);
        exit(2);
    }
    return sa;
}

static void write_all(int fd, const char *buf, size_t len) {
    while (len > 0) {
        ssize_t n = write(fd, buf, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            perror("sender: write");
            exit(1);
        }
        buf += n;
        len -= (size_t)n;
    }
}

/* Sends seq in [first, last) on one connection, as fast as the peer reads. */
static void tcp_range(struct sockaddr_in sa, unsigned long first, unsigned long last) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("sender: connect");
        exit(1);
    }
    char *chunk = malloc(TCP_CHUNK + MSG_MAX + 16);
    size_t used = 0;
    char msg[MSG_MAX];
    for (unsigned long seq = first; seq < last; seq++) {
        int len = format_msg(msg, seq);
        used += (size_t)sprintf(chunk + used, "%d ", len);
        memcpy(chunk + used, msg, (size_t)len);
        used += (size_t)len;
        if (used >= TCP_CHUNK) {
            write_all(fd, chunk, used);
            used = 0;
        }
    }
    write_all(fd, chunk, used);
    shutdown(fd, SHUT_WR);
    /* Wait for the daemon to close its side, so "sent" means "read by the daemon". */
    while (read(fd, chunk, TCP_CHUNK) > 0) {
    }
    close(fd);
    free(chunk);
}

static int run_tcp(struct sockaddr_in sa, unsigned long count, int conns) {
    double t0 = now();
    for (int i = 0; i < conns; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("sender: fork");
            return 1;
        }
        if (pid == 0) {
            tcp_range(sa, count * (unsigned long)i / conns, count * (unsigned long)(i + 1) / conns);
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    printf("{\"sent\": %lu, \"seconds\": %.6f}\n", failed ? 0 : count, now() - t0);
    return failed;
}

/* One connection, messages written as they fall due: a sustained rate, not a burst. */
static int run_tcp_paced(struct sockaddr_in sa, unsigned long count, double rate) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("sender: connect");
        return 1;
    }
    char *chunk = malloc(TCP_CHUNK + MSG_MAX + 16);
    char msg[MSG_MAX];
    unsigned long seq = 0;
    double t0 = now();
    while (seq < count) {
        unsigned long due = (unsigned long)((now() - t0) * rate) + 1;
        if (due > count) due = count;
        if (due <= seq) {
            double wake = t0 + (double)seq / rate;
            struct timespec ts = {(time_t)wake, (long)((wake - (time_t)wake) * 1e9)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        size_t used = 0;
        for (; seq < due && used < TCP_CHUNK; seq++) {
            int len = format_msg(msg, seq);
            used += (size_t)sprintf(chunk + used, "%d ", len);
            memcpy(chunk + used, msg, (size_t)len);
            used += (size_t)len;
        }
        write_all(fd, chunk, used);
    }
    double seconds = now() - t0;
    shutdown(fd, SHUT_WR);
    while (read(fd, chunk, TCP_CHUNK) > 0) {
    }
    close(fd);
    free(chunk);
    printf("{\"sent\": %lu, \"seconds\": %.6f}\n", count, seconds);
    return 0;
}

static int run_udp(struct sockaddr_in sa, unsigned long count, double rate) {
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa) < 0) {
        perror("sender: udp socket");
        return 1;
    }
    int sndbuf = 4 << 20;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
    static char bufs[UDP_BATCH][MSG_MAX];
    struct mmsghdr hdrs[UDP_BATCH];
    struct iovec iov[UDP_BATCH];
    unsigned long seq = 0, errors = 0;
    double t0 = now();
    while (seq < count) {
        double elapsed = now() - t0;
        unsigned long due = (unsigned long)(elapsed * rate) + 1;
        if (due > count) due = count;
        if (due <= seq) {
            /* Sleep until the next message is due. */
            double wake = t0 + (double)seq / rate;
            struct timespec ts = {(time_t)wake, (long)((wake - (time_t)wake) * 1e9)};
            clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &ts, NULL);
            continue;
        }
        unsigned n = (unsigned)(due - seq < UDP_BATCH ? due - seq : UDP_BATCH);
        memset(hdrs, 0, sizeof(struct mmsghdr) * n);
        for (unsigned i = 0; i < n; i++) {
            iov[i].iov_base = bufs[i];
            iov[i].iov_len = (size_t)format_msg(bufs[i], seq + i);
            hdrs[i].msg_hdr.msg_iov = &iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
        }
        unsigned done = 0;
        while (done < n) {
            int k = sendmmsg(fd, hdrs + done, n - done, 0);
            if (k < 0) {
                if (errno == EINTR) continue;
                errors++; /* ECONNREFUSED or ENOBUFS: that datagram is lost, count it as sent */
                done++;
                continue;
            }
            done += (unsigned)k;
        }
        seq += n;
    }
    printf("{\"sent\": %lu, \"seconds\": %.6f, \"send_errors\": %lu}\n", count, now() - t0, errors);
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 6) {
        fprintf(stderr, "usage: sender tcp HOST PORT COUNT CONNS | sender udp|tcp-paced HOST PORT COUNT RATE\n");
        return 2;
    }
    struct sockaddr_in sa = target(argv[2], atoi(argv[3]));
    unsigned long count = strtoul(argv[4], NULL, 10);
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S.123456Z", &tm);
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (strcmp(argv[1], "tcp") == 0) return run_tcp(sa, count, atoi(argv[5]));
    if (strcmp(argv[1], "udp") == 0) return run_udp(sa, count, atof(argv[5]));
    if (strcmp(argv[1], "tcp-paced") == 0) return run_tcp_paced(sa, count, atof(argv[5]));
    fprintf(stderr, "sender: unknown mode %s\n", argv[1]);
    return 2;
}
