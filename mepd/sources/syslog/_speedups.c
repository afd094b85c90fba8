/* The syslog hot path in C: reading a datagram socket's waiting datagrams in one call, framing a TCP
 * read into frames, and the usual RFC 5424 / RFC 3164 message to its LogRecord.
 *
 * Built by setup.py as mepd.sources.syslog._speedups (optional: without a compiler mepd runs the pure
 * Python path, which stays the reference).  Every function here handles only the common shapes and
 * hands everything else back to Python ("not handled"): a frame the C code accepts gives exactly what
 * the Python code gives (tests/unit/sources/syslog/test_speedups.py compares both on the corpus and on
 * hypothesis input).  What needs the time zone database (a stamp without an offset, year inference of
 * BSD stamps) is asked of the Python functions given to setup(), once per distinct hour in a call.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>
#include <string.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <sys/un.h>

/* LogRecord: its type and the offsets of its slots, as setup() found them. */
enum { F_TS, F_RECEIVED, F_MESSAGE, F_SOURCE, F_HOST, F_APP, F_PID, F_FACILITY, F_SEVERITY, F_MSGID, F_SD,
       F_PEER, N_FILLED };
#define MAX_OTHER 16
static PyTypeObject *record_type;
static Py_ssize_t filled_offset[N_FILLED];
static Py_ssize_t other_offset[MAX_OTHER];
static Py_ssize_t n_other;
static PyObject *no_sd;       /* the shared empty structured data */
static PyObject *wall_hour;   /* common.wall_hour(tz, y, m, d, hh) -> float | None */
static PyObject *bsd_hour;    /* rfc3164._bsd_hour(tz, (month, day, year, hh), received_hour) -> float | None */
static PyObject *zero;        /* the 0 beside each frame: its size when the transport cut it, never here */

/* ---------------------------------------------------------------------------------------- datagrams */

#define RECV_BATCH 64  /* datagrams per recvmmsg call */

/* The sender as server._peer gives it: "ip:port", "[ipv6]:port" (an IPv4-mapped address as IPv4), a unix
 * socket's path, or None (an unbound or abstract unix socket, no address). */
static PyObject *
peer_of(const struct sockaddr_storage *ss, socklen_t len)
{
    char host[NI_MAXHOST];
    if (len == 0)
        Py_RETURN_NONE;
    if (ss->ss_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *a = (const struct sockaddr_in *)ss;
        if (inet_ntop(AF_INET, &a->sin_addr, host, sizeof host) == NULL)
            return PyErr_SetFromErrno(PyExc_OSError);
        return PyUnicode_FromFormat("%s:%u", host, (unsigned)ntohs(a->sin_port));
    }
    if (ss->ss_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *a = (const struct sockaddr_in6 *)ss;
        /* As the socket module makes the host: getnameinfo, which adds a link-local address's "%scope". */
        int err = getnameinfo((const struct sockaddr *)ss, len, host, sizeof host, NULL, 0, NI_NUMERICHOST);
        if (err != 0) {
            PyErr_Format(PyExc_OSError, "getnameinfo: %s", gai_strerror(err));
            return NULL;
        }
        const char *h = host;
        if (strncmp(h, "::ffff:", 7) == 0 && strchr(h, '.') != NULL)
            h += 7;
        unsigned port = ntohs(a->sin6_port);
        return strchr(h, ':') != NULL ? PyUnicode_FromFormat("[%s]:%u", h, port)
                                      : PyUnicode_FromFormat("%s:%u", h, port);
    }
    if (ss->ss_family == AF_UNIX) {
        const struct sockaddr_un *a = (const struct sockaddr_un *)ss;
        Py_ssize_t n = (Py_ssize_t)len - (Py_ssize_t)offsetof(struct sockaddr_un, sun_path);
        if (n <= 0 || a->sun_path[0] == '\0')  /* unbound, or the abstract namespace (bytes in Python) */
            Py_RETURN_NONE;
        return PyUnicode_DecodeFSDefaultAndSize(a->sun_path, (Py_ssize_t)strnlen(a->sun_path, (size_t)n));
    }
    Py_RETURN_NONE;
}

/* datagrams(fd, buffer, slot, limit) -> (list, errno): server.read_datagrams' pure loop in recvmmsg calls.
 * Up to `limit` waiting datagrams as (data cut at `slot` bytes, its whole size when cut else 0, sender),
 * each read into its own `slot` bytes of the writable `buffer`; errno is what stopped the reading (0: the
 * socket had no more, or `limit` was reached). */
static PyObject *
datagrams(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "datagrams(fd: int, buffer, slot: int, limit: int)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    Py_ssize_t slot = PyLong_AsSsize_t(args[2]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT_MAX) {
        PyErr_SetString(PyExc_ValueError, "datagrams: not a file descriptor");
        return NULL;
    }
    Py_buffer buf;
    if (PyObject_GetBuffer(args[1], &buf, PyBUF_WRITABLE) < 0)
        return NULL;
    Py_ssize_t slots = slot > 0 ? buf.len / slot : 0;
    if (slots > RECV_BATCH)
        slots = RECV_BATCH;
    if (slots < 1 || slot > (Py_ssize_t)UINT_MAX) {
        PyBuffer_Release(&buf);
        PyErr_SetString(PyExc_ValueError, "datagrams: the buffer must hold at least one slot");
        return NULL;
    }
    PyObject *out = PyList_New(0);
    if (out == NULL) {
        PyBuffer_Release(&buf);
        return NULL;
    }
    struct mmsghdr hdrs[RECV_BATCH];
    struct iovec iov[RECV_BATCH];
    struct sockaddr_storage addrs[RECV_BATCH];
    struct sockaddr_storage last;  /* the previous datagram's sender, and its peer string, reused for a run */
    socklen_t last_len = 0;
    PyObject *last_peer = NULL;
    int error = 0;
    Py_ssize_t got = 0;
    while (got < limit) {
        unsigned want = (unsigned)(limit - got < slots ? limit - got : slots);
        for (unsigned i = 0; i < want; i++) {
            iov[i].iov_base = (char *)buf.buf + (Py_ssize_t)i * slot;
            iov[i].iov_len = (size_t)slot;
            memset(&hdrs[i], 0, sizeof hdrs[i]);
            hdrs[i].msg_hdr.msg_iov = &iov[i];
            hdrs[i].msg_hdr.msg_iovlen = 1;
            hdrs[i].msg_hdr.msg_name = &addrs[i];
            hdrs[i].msg_hdr.msg_namelen = sizeof addrs[i];
        }
        /* The GIL is kept: the call never blocks, and giving the GIL up to another thread can cost the loop
         * a whole switch interval to get it back. */
        int n = recvmmsg((int)fd, hdrs, want, MSG_DONTWAIT | MSG_TRUNC, NULL);
        if (n < 0) {
            if (errno == EINTR) {  /* as the socket module does (PEP 475): retry, unless a handler raised */
                if (PyErr_CheckSignals() < 0)
                    goto fail;
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                error = errno;
            break;
        }
        for (int i = 0; i < n; i++) {
            /* With MSG_TRUNC, msg_len is the datagram's whole size, even past its slot. */
            Py_ssize_t size = (Py_ssize_t)hdrs[i].msg_len;
            socklen_t alen = hdrs[i].msg_hdr.msg_namelen;
            if (alen > sizeof addrs[i])  /* the kernel gives the whole length of an address it had to cut */
                alen = sizeof addrs[i];
            if (last_peer == NULL || alen != last_len || memcmp(&addrs[i], &last, alen) != 0) {
                Py_XDECREF(last_peer);
                last_peer = peer_of(&addrs[i], alen);
                if (last_peer == NULL)
                    goto fail;
                memcpy(&last, &addrs[i], alen);
                last_len = alen;
            }
            PyObject *item = Py_BuildValue("(y#nO)", iov[i].iov_base, size < slot ? size : slot,
                                           size > slot ? size : (Py_ssize_t)0, last_peer);
            if (item == NULL || PyList_Append(out, item) < 0) {
                Py_XDECREF(item);
                goto fail;
            }
            Py_DECREF(item);
        }
        got += n;
        if ((unsigned)n < want)
            break;
    }
    Py_XDECREF(last_peer);
    PyBuffer_Release(&buf);
    return Py_BuildValue("(Ni)", out, error);
fail:
    Py_XDECREF(last_peer);
    Py_DECREF(out);
    PyBuffer_Release(&buf);
    return NULL;
}

/* ------------------------------------------------------------------------------------------ framing */

static inline int is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* frames(buf, pos, limit, out) -> pos: FrameSplitter.feed's usual frames from `pos` on, appended to `out`
 * as (frame, 0); returns where it stopped: len(buf), or a frame it leaves to Python (a count not followed
 * by "<", a frame not whole in the buffer or over the limit). */
static PyObject *
frames(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[0]) || !PyList_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "frames(buf: bytes, pos: int, limit: int, out: list)");
        return NULL;
    }
    const unsigned char *b = (const unsigned char *)PyBytes_AS_STRING(args[0]);
    Py_ssize_t n = PyBytes_GET_SIZE(args[0]);
    Py_ssize_t pos = PyLong_AsSsize_t(args[1]);
    Py_ssize_t limit = PyLong_AsSsize_t(args[2]);
    if ((pos == -1 || limit == -1) && PyErr_Occurred())
        return NULL;
    PyObject *out = args[3];
    while (pos < n) {
        unsigned char c = b[pos];
        if (c == '\n' || c == '\r' || c == '\0' || c == ' ') {
            pos++;
            continue;
        }
        Py_ssize_t start, end, next;
        if (is_digit(c)) { /* octet counting: up to 11 digits, a space, and the message's "<" */
            Py_ssize_t i = pos;
            long long length = 0;
            while (i < n && i - pos < 11 && is_digit(b[i]))
                length = length * 10 + (b[i++] - '0');
            if (i + 1 >= n || b[i] != ' ' || b[i + 1] != '<')
                break;
            start = i + 1;
            if (length > limit || length > n - start)
                break;
            end = next = start + (Py_ssize_t)length;
        } else { /* up to the next LF or NUL, within the limit */
            Py_ssize_t stop = n - pos > limit ? pos + limit + 1 : n;
            end = pos;
            while (end < stop && b[end] != '\n' && b[end] != '\0')
                end++;
            if (end == stop)
                break;
            next = end + 1;
            start = pos;
            while (end > start && b[end - 1] == '\r')
                end--;
        }
        PyObject *data = PyBytes_FromStringAndSize((const char *)b + start, end - start);
        if (data == NULL)
            return NULL;
        PyObject *pair = PyTuple_Pack(2, data, zero);
        Py_DECREF(data);
        if (pair == NULL || PyList_Append(out, pair) < 0) {
            Py_XDECREF(pair);
            return NULL;
        }
        Py_DECREF(pair);
        pos = next;
    }
    return PyLong_FromSsize_t(pos);
}

/* ------------------------------------------------------------------------------------------ parsing */

/* What stays the same over one parse_many call: its arguments and the hour bases already asked for. */
typedef struct {
    PyObject *received, *source, *peer, *tz, *fallback_host;
    PyObject *received_hour; /* int(received // 3600), computed at the first BSD stamp */
    long long wall_key;      /* y*1e6 + m*1e4 + d*100 + hh of the last wall_hour answer, -1: none */
    double wall_base;
    long long bsd_key;       /* month index, day, hour of the last bsd_hour answer, -1: none */
    double bsd_base;
    /* The last text of each repeated field and its interned str: a sender repeats host, app, pid. */
    struct { PyObject *text; const unsigned char *bytes; Py_ssize_t len; } last[4];
} Call;

enum { L_HOST, L_APP, L_PID, L_MSGID };

/* A field's text, interned, reusing the previous one when the bytes are the same.  New reference. */
static PyObject *
field(Call *call, int slot, const unsigned char *s, Py_ssize_t len)
{
    PyObject *prev = call->last[slot].text;
    if (prev != NULL && call->last[slot].len == len && memcmp(call->last[slot].bytes, s, len) == 0) {
        Py_INCREF(prev);
        return prev;
    }
    PyObject *text = PyUnicode_DecodeUTF8((const char *)s, len, "replace");
    if (text == NULL)
        return NULL;
    PyUnicode_InternInPlace(&text);
    Py_XSETREF(call->last[slot].text, Py_NewRef(text));
    call->last[slot].bytes = s;
    call->last[slot].len = len;
    return text;
}

/* A LogRecord with the given fields (references stolen; NULL values mean a failure before, then all are
 * released) and None for the others, made without running the dataclass's __init__. */
static PyObject *
make_record(PyObject *values[N_FILLED])
{
    PyObject *rec = NULL;
    for (int k = 0; k < N_FILLED; k++)
        if (values[k] == NULL)
            goto fail;
    rec = record_type->tp_alloc(record_type, 0);
    if (rec == NULL)
        goto fail;
    for (int k = 0; k < N_FILLED; k++)
        *(PyObject **)((char *)rec + filled_offset[k]) = values[k];
    for (Py_ssize_t k = 0; k < n_other; k++)
        *(PyObject **)((char *)rec + other_offset[k]) = Py_NewRef(Py_None);
    return rec;
fail:
    for (int k = 0; k < N_FILLED; k++)
        Py_XDECREF(values[k]);
    return NULL;
}

static long long
floor_div(long long a, long long b)
{
    long long q = a / b;
    return (a % b != 0 && (a < 0) != (b < 0)) ? q - 1 : q;
}

/* common.days_from_civil */
static long long
days_from_civil(long long y, long long m, long long d)
{
    y -= m <= 2;
    long long era = floor_div(y, 400);
    long long yoe = y - era * 400;
    long long doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    long long doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

/* common.valid_date */
static int
valid_date(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m < 1 || m > 12 || d < 1)
        return 0;
    if (m == 2 && d == 29)
        return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
    return d <= mdays[m - 1];
}

static int
digits(const unsigned char *s, int count)
{
    int v = 0;
    for (int k = 0; k < count; k++) {
        if (!is_digit(s[k]))
            return -1;
        v = v * 10 + (s[k] - '0');
    }
    return v;
}

/* Calls a hour-base function; 1 with *base set, 0 when it says None or raises an Exception (the frame is
 * then left to Python, which meets the same answer), -1 on a failure that must propagate. */
static int
hour_base(PyObject *result, double *base)
{
    if (result == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_Exception))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int ok = PyFloat_Check(result);
    if (ok)
        *base = PyFloat_AS_DOUBLE(result);
    Py_DECREF(result);
    return ok;
}

/* An RFC 3339 stamp from s[*i] (as common.ISO_TS, its fraction and zone included, ASCII digits only),
 * to epoch seconds as common.second_epoch + fraction give them.  1 with *ts, 0 not handled, -1 error. */
static int
iso_stamp(Call *call, const unsigned char *s, Py_ssize_t n, Py_ssize_t *i, double *ts)
{
    Py_ssize_t p = *i;
    if (n - p < 19)
        return 0;
    const unsigned char *t = s + p;
    int y = digits(t, 4), mo = digits(t + 5, 2), d = digits(t + 8, 2);
    int hh = digits(t + 11, 2), mi = digits(t + 14, 2), ss = digits(t + 17, 2);
    if (y < 0 || mo < 0 || d < 0 || hh < 0 || mi < 0 || ss < 0 || t[4] != '-' || t[7] != '-'
        || (t[10] != 'T' && t[10] != 't') || t[13] != ':' || t[16] != ':')
        return 0;
    p += 19;
    double frac = 0.0;
    if (p < n && s[p] == '.') {
        long long v = 0, scale = 1;
        Py_ssize_t q = p + 1;
        while (q < n && q - p <= 9 && is_digit(s[q])) {
            v = v * 10 + (s[q++] - '0');
            scale *= 10;
        }
        if (q == p + 1)
            return 0;
        frac = (double)v / (double)scale;
        p = q;
    }
    int zoned = 0;
    long long offset = 0;
    if (p < n && (s[p] == 'Z' || s[p] == 'z')) {
        zoned = 1;
        p++;
    } else if (p < n && (s[p] == '+' || s[p] == '-')) {
        int sign = s[p] == '+' ? 1 : -1;
        int oh = n - p >= 3 ? digits(s + p + 1, 2) : -1;
        if (oh < 0)
            return 0;
        Py_ssize_t q = p + 3 + (p + 3 < n && s[p + 3] == ':');
        int om = n - q >= 2 ? digits(s + q, 2) : -1;
        if (om < 0)
            return 0;
        zoned = 1;
        offset = sign * (oh * 3600LL + om * 60LL);
        p = q + 2;
    }
    if (hh >= 24 || mi >= 60 || ss > 60) /* common.seconds */
        return 0;
    long long secs = hh * 3600LL + mi * 60LL + ss;
    if (zoned) {
        if (!valid_date(y, mo, d))
            return 0;
        *ts = (double)(days_from_civil(y, mo, d) * 86400 + secs) + frac - (double)offset;
    } else {
        long long key = y * 1000000LL + mo * 10000LL + d * 100LL + hh;
        if (key != call->wall_key) {
            int got = hour_base(PyObject_CallFunction(wall_hour, "Oiiii", call->tz, y, mo, d, hh), &call->wall_base);
            if (got <= 0)
                return got;
            call->wall_key = key;
        }
        *ts = call->wall_base + (double)secs - (double)(hh * 3600LL) + frac - 0.0;
    }
    *i = p;
    return 1;
}

/* `<PRI>` at the start: 1-3 digits up to 191; the index after it, or 0 when not handled. */
static Py_ssize_t
pri(const unsigned char *s, Py_ssize_t n, int *value)
{
    if (n < 3 || s[0] != '<')
        return 0;
    Py_ssize_t i = 1;
    int v = 0;
    while (i < n && i <= 3 && is_digit(s[i]))
        v = v * 10 + (s[i++] - '0');
    if (i == 1 || i >= n || s[i] != '>' || v > 191)
        return 0;
    *value = v;
    return i + 1;
}

/* A space-free field from s[*i], followed by a space: its end, or -1. */
static Py_ssize_t
word(const unsigned char *s, Py_ssize_t n, Py_ssize_t i)
{
    const unsigned char *sp = memchr(s + i, ' ', n - i);
    return sp == NULL || sp == s + i ? -1 : sp - s;
}

static PyObject *
text_of(const unsigned char *s, Py_ssize_t len)
{
    return PyUnicode_DecodeUTF8((const char *)s, len, "replace");
}

static PyObject *
int_of(long v)
{
    return PyLong_FromLong(v);
}

/* parse._usual_5424: `<PRI>1 STAMP HOST APP PROCID MSGID - [MSG]`.  1 with *out, 0 not handled, -1 error. */
static int
usual_5424(Call *call, const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    int p;
    Py_ssize_t i = pri(s, n, &p);
    if (i == 0 || n - i < 2 || s[i] != '1' || s[i + 1] != ' ')
        return 0;
    i += 2;
    double ts;
    int got = iso_stamp(call, s, n, &i, &ts);
    if (got <= 0)
        return got;
    if (i >= n || s[i] != ' ')
        return 0;
    Py_ssize_t f[4][2];
    i++;
    for (int k = 0; k < 4; k++) {
        Py_ssize_t e = word(s, n, i);
        if (e < 0)
            return 0;
        f[k][0] = i;
        f[k][1] = e;
        i = e + 1;
    }
    if (i >= n || s[i] != '-')
        return 0;
    i++;
    Py_ssize_t m = n;
    if (i < n) {
        if (s[i] != ' ')
            return 0;
        m = i + 1;
        if (n - m >= 3 && s[m] == 0xEF && s[m + 1] == 0xBB && s[m + 2] == 0xBF)
            m += 3;
    }
    static const int slot[4] = {F_HOST, F_APP, F_PID, F_MSGID}; /* in the order of L_HOST... */
    PyObject *v[N_FILLED];
    for (int k = 0; k < 4; k++) {
        Py_ssize_t a = f[k][0], len = f[k][1] - a;
        if (len == 1 && s[a] == '-') /* the NILVALUE */
            v[slot[k]] = Py_NewRef(k == L_HOST ? call->fallback_host : Py_None);
        else
            v[slot[k]] = field(call, k, s + a, len);
    }
    v[F_TS] = PyFloat_FromDouble(ts);
    v[F_RECEIVED] = Py_NewRef(call->received);
    v[F_MESSAGE] = text_of(s + m, n - m);
    v[F_SOURCE] = Py_NewRef(call->source);
    v[F_FACILITY] = int_of(p >> 3);
    v[F_SEVERITY] = int_of(p & 7);
    v[F_SD] = Py_NewRef(no_sd);
    v[F_PEER] = Py_NewRef(call->peer);
    *out = make_record(v);
    return *out == NULL ? -1 : 1;
}

static int
in_tag(unsigned char c)
{
    /* rfc3164's tag class [^\s:\[\]=",%], ASCII only (\s as str.isspace: \t-\r, \x1c-\x1f, space) */
    return c > ' ' && c < 0x80 && c != ':' && c != '[' && c != ']' && c != '=' && c != '"' && c != ','
           && c != '%';
}

static int
in_host(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '.' || c == '-';
}

/* parse._usual_3164: `<PRI>Mmm dd hh:mm:ss HOST TAG[PID]: MSG` or with an RFC 3339 stamp.  As usual_5424. */
static int
usual_3164(Call *call, const unsigned char *s, Py_ssize_t n, PyObject **out)
{
    int p;
    Py_ssize_t i = pri(s, n, &p);
    if (i == 0 || i >= n)
        return 0;
    double ts;
    if (s[i] >= 'A' && s[i] <= 'Z') {
        if (n - i < 5 || s[i + 1] < 'a' || s[i + 1] > 'z' || s[i + 2] < 'a' || s[i + 2] > 'z' || s[i + 3] != ' ')
            return 0;
        const unsigned char *mon = s + i;
        Py_ssize_t q = i + 4 + (s[i + 4] == ' ');
        Py_ssize_t day_at = q;
        while (q < n && q - day_at < 2 && is_digit(s[q]))
            q++;
        Py_ssize_t day_len = q - day_at;
        if (day_len == 0 || n - q < 9 || s[q] != ' ' || s[q + 3] != ':' || s[q + 6] != ':')
            return 0;
        int hh = digits(s + q + 1, 2), mi = digits(s + q + 4, 2), ss = digits(s + q + 7, 2);
        if (hh < 0 || mi < 0 || ss < 0 || mi > 59 || ss > 60) /* rfc3164.wall's own checks */
            return 0;
        int day = digits(s + day_at, (int)day_len);
        long long key = ((long long)(mon[0] << 16 | mon[1] << 8 | mon[2]) * 100 + day) * 100 + hh;
        if (key != call->bsd_key) {
            if (call->received_hour == NULL) {
                PyObject *hour = PyLong_FromLong(3600);
                PyObject *h = hour == NULL ? NULL : PyNumber_FloorDivide(call->received, hour);
                call->received_hour = h == NULL ? NULL : PyNumber_Long(h);
                Py_XDECREF(hour);
                Py_XDECREF(h);
                if (call->received_hour == NULL)
                    return -1;
            }
            PyObject *stamp = Py_BuildValue("(s#s#Os#)", (const char *)mon, (Py_ssize_t)3, (const char *)s + day_at,
                                            day_len, Py_None, (const char *)s + q + 1, (Py_ssize_t)2);
            if (stamp == NULL)
                return -1;
            int got = hour_base(PyObject_CallFunctionObjArgs(bsd_hour, call->tz, stamp, call->received_hour, NULL),
                                &call->bsd_base);
            Py_DECREF(stamp);
            if (got <= 0)
                return got;
            call->bsd_key = key;
        }
        ts = call->bsd_base + (double)(mi * 60) + (double)ss + 0.0;
        i = q + 9;
    } else if (is_digit(s[i])) {
        if (n - i < 20 || s[i + 4] != '-')
            return 0;
        int got = iso_stamp(call, s, n, &i, &ts);
        if (got <= 0)
            return got;
    } else {
        return 0;
    }
    if (i >= n || s[i] != ' ')
        return 0;
    i++;
    /* (?!\d{4} ) then the host */
    if (n - i >= 5 && is_digit(s[i]) && is_digit(s[i + 1]) && is_digit(s[i + 2]) && is_digit(s[i + 3])
        && s[i + 4] == ' ')
        return 0;
    Py_ssize_t host = i;
    while (i < n && in_host(s[i]))
        i++;
    Py_ssize_t host_len = i - host;
    if (host_len == 0 || host_len > 255 || i >= n || s[i] != ' ')
        return 0;
    i++;
    Py_ssize_t tag = i;
    int all_digits = 1;
    while (i < n && in_tag(s[i])) {
        all_digits &= is_digit(s[i]);
        i++;
    }
    Py_ssize_t tag_len = i - tag;
    if (tag_len == 0 || tag_len > 64 || all_digits)
        return 0;
    Py_ssize_t pid = -1, pid_len = 0;
    if (i < n && s[i] == '[') {
        pid = ++i;
        while (i < n && is_digit(s[i]))
            i++;
        pid_len = i - pid;
        if (pid_len == 0 || pid_len > 20 || i >= n || s[i] != ']')
            return 0;
        i++;
    }
    if (n - i < 2 || s[i] != ':' || s[i + 1] != ' ')
        return 0;
    i += 2;
    PyObject *v[N_FILLED];
    v[F_TS] = PyFloat_FromDouble(ts);
    v[F_RECEIVED] = Py_NewRef(call->received);
    v[F_MESSAGE] = text_of(s + i, n - i);
    v[F_SOURCE] = Py_NewRef(call->source);
    v[F_HOST] = field(call, L_HOST, s + host, host_len);
    v[F_APP] = field(call, L_APP, s + tag, tag_len);
    v[F_PID] = pid < 0 ? Py_NewRef(Py_None) : field(call, L_PID, s + pid, pid_len);
    v[F_FACILITY] = int_of(p >> 3);
    v[F_SEVERITY] = int_of(p & 7);
    v[F_MSGID] = Py_NewRef(Py_None);
    v[F_SD] = Py_NewRef(no_sd);
    v[F_PEER] = Py_NewRef(call->peer);
    *out = make_record(v);
    return *out == NULL ? -1 : 1;
}

/* parse_many(frames, received, source, peer, tz, fallback_host, slow) -> list[LogRecord]: each frame
 * parsed here when it has a usual shape, else by slow(frame, received, source, peer, tz, fallback_host). */
static PyObject *
parse_many(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 7) {
        PyErr_SetString(PyExc_TypeError, "parse_many takes 7 arguments");
        return NULL;
    }
    if (record_type == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "_speedups.setup() was not called");
        return NULL;
    }
    Call call = {.received = args[1], .source = args[2], .peer = args[3], .tz = args[4],
                 .fallback_host = args[5], .wall_key = -1, .bsd_key = -1};
    PyObject *slow = args[6];
    PyObject *seq = PySequence_Fast(args[0], "frames must be iterable");
    if (seq == NULL)
        return NULL;
    Py_ssize_t count = PySequence_Fast_GET_SIZE(seq);
    PyObject *result = PyList_New(count);
    if (result == NULL)
        goto done;
    for (Py_ssize_t k = 0; k < count; k++) {
        PyObject *data = PySequence_Fast_GET_ITEM(seq, k);
        PyObject *rec = NULL;
        int got = 0;
        if (PyBytes_Check(data)) {
            const unsigned char *s = (const unsigned char *)PyBytes_AS_STRING(data);
            Py_ssize_t n = PyBytes_GET_SIZE(data);
            while (n > 0 && (s[n - 1] == '\r' || s[n - 1] == '\n' || s[n - 1] == '\0'))
                n--;
            got = usual_5424(&call, s, n, &rec);
            if (got == 0)
                got = usual_3164(&call, s, n, &rec);
        }
        if (got == 0) {
            PyObject *call_args[6] = {data, call.received, call.source, call.peer, call.tz, call.fallback_host};
            rec = PyObject_Vectorcall(slow, call_args, 6, NULL);
        }
        if (rec == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyList_SET_ITEM(result, k, rec);
    }
done:
    Py_DECREF(seq);
    Py_XDECREF(call.received_hour);
    for (int k = 0; k < 4; k++)
        Py_XDECREF(call.last[k].text);
    return result;
}

/* setup(record_type, filled, others, no_sd, wall_hour, bsd_hour): `filled` names the 12 slots parse_many
 * sets (ts, received, message, source, host, app, pid, facility, severity, msgid, sd, peer, in that
 * order), `others` the slots it sets to None. */
static PyObject *
setup(PyObject *Py_UNUSED(module), PyObject *args)
{
    PyObject *type, *filled, *others, *sd, *wall, *bsd;
    if (!PyArg_ParseTuple(args, "O!O!O!OOO:setup", &PyType_Type, &type, &PyTuple_Type, &filled, &PyTuple_Type,
                          &others, &sd, &wall, &bsd))
        return NULL;
    if (PyTuple_GET_SIZE(filled) != N_FILLED || PyTuple_GET_SIZE(others) > MAX_OTHER) {
        PyErr_SetString(PyExc_ValueError, "setup: unexpected number of fields");
        return NULL;
    }
    Py_ssize_t offsets[N_FILLED + MAX_OTHER];
    Py_ssize_t total = N_FILLED + PyTuple_GET_SIZE(others);
    for (Py_ssize_t k = 0; k < total; k++) {
        PyObject *name = k < N_FILLED ? PyTuple_GET_ITEM(filled, k) : PyTuple_GET_ITEM(others, k - N_FILLED);
        PyObject *descr = PyObject_GetAttr(type, name);
        if (descr == NULL)
            return NULL;
        int ok = Py_IS_TYPE(descr, &PyMemberDescr_Type)
                 && ((PyMemberDescrObject *)descr)->d_member->type == T_OBJECT_EX;
        if (ok)
            offsets[k] = ((PyMemberDescrObject *)descr)->d_member->offset;
        Py_DECREF(descr);
        if (!ok) {
            PyErr_Format(PyExc_TypeError, "setup: %R is not a slot holding an object", name);
            return NULL;
        }
    }
    memcpy(filled_offset, offsets, sizeof filled_offset);
    memcpy(other_offset, offsets + N_FILLED, (total - N_FILLED) * sizeof(Py_ssize_t));
    n_other = total - N_FILLED;
    Py_XSETREF(record_type, (PyTypeObject *)Py_NewRef(type));
    Py_XSETREF(no_sd, Py_NewRef(sd));
    Py_XSETREF(wall_hour, Py_NewRef(wall));
    Py_XSETREF(bsd_hour, Py_NewRef(bsd));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"datagrams", (PyCFunction)(void (*)(void))datagrams, METH_FASTCALL, "server.read_datagrams in recvmmsg calls."},
    {"frames", (PyCFunction)(void (*)(void))frames, METH_FASTCALL, "FrameSplitter.feed's usual frames."},
    {"parse_many", (PyCFunction)(void (*)(void))parse_many, METH_FASTCALL, "parse.parse_many's usual messages."},
    {"setup", setup, METH_VARARGS, "The record type and the hour functions parse_many uses."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "mepd.sources.syslog._speedups",
    "The syslog hot path in C (see _speedups.c); the Python modules are the reference.", -1, methods,
    NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__speedups(void)
{
    zero = PyLong_FromLong(0);
    if (zero == NULL)
        return NULL;
    return PyModule_Create(&module);
}
