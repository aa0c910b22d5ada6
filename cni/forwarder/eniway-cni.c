/*
 * eniway-cni: the node's CNI binary, a forwarder to the eniway daemon.
 *
 * The daemon holds the one CNI implementation (src/daemon/cni-exec.ts). This
 * program sends it the runtime's CNI_* environment and stdin unchanged over
 * the daemon's unix socket and writes the daemon's answer and exit code. It
 * is C with libc only, statically linked: a runtime starts it for every pod,
 * and a TypeScript runtime's start alone costs more than a whole ADD of the
 * reference plugins. What it decides itself, because the daemon may be down:
 *   - VERSION is answered here, without the daemon;
 *   - the daemon unreachable: ADD, CHECK and GC answer code 11 (try again
 *     later), STATUS code 50, and DEL succeeds after writing its request into
 *     SOCKET.del/ for the daemon to complete at its start.
 * It reads two keys of the configuration: `socket` and `timeoutSeconds`
 * (top-level strings and numbers); the daemon validates all of it.
 *
 * Request: POST /v1/cni, body "NAME=VALUE\0" for each CNI_* variable, "\0",
 * then stdin. Answer: 200 with body "EXIT\n" then the bytes for stdout.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

extern char **environ;

#define DEFAULT_SOCKET "/run/eniway/eniway.sock"
#define LATEST "1.1.0"
#define VERSIONS "[\"0.3.0\",\"0.3.1\",\"0.4.0\",\"1.0.0\",\"1.1.0\"]"
#define MAX_INPUT (8 << 20)
#define ERR_IO 5
#define ERR_TRY_LATER 11
#define ERR_NOT_AVAILABLE 50
#define ERR_INTERNAL 999

struct buf { char *p; size_t n, cap; };

static void put(struct buf *b, const void *d, size_t n) {
  if (b->n + n + 1 > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->n + n + 1) cap *= 2;
    char *p = realloc(b->p, cap);
    if (!p) _exit(ERR_INTERNAL % 256);
    b->p = p, b->cap = cap;
  }
  memcpy(b->p + b->n, d, n);
  b->n += n;
  b->p[b->n] = 0;
}
static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

static long long now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* Waits for fd to be ready for `events` until the deadline: 1 ready, 0 timed out. */
static int wait_fd(int fd, short events, long long deadline) {
  for (;;) {
    long long left = deadline - now_ms();
    if (left <= 0) return 0;
    struct pollfd p = {fd, events, 0};
    int r = poll(&p, 1, left > 60000 ? 60000 : (int)left);
    if (r > 0) return 1;
    if (r < 0 && errno != EINTR) return 1; /* the read or write says what is wrong */
  }
}

/* Writes all of p, also to a non-blocking fd, until the deadline: 1 written, 0 not (the deadline, an error). */
static int send_all(int fd, const char *p, size_t n, long long deadline) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w < 0 && errno == EINTR) continue;
    if (w < 0 && errno == EAGAIN) {
      if (!wait_fd(fd, POLLOUT, deadline)) return 0;
      continue;
    }
    if (w <= 0) return 0;
    p += w, n -= (size_t)w;
  }
  return 1;
}
#define write_all(fd, p, n) send_all(fd, p, n, now_ms() + 60000)

/* ---- the two configuration keys: a scan of the top-level JSON object ---- */

static const char *ws(const char *s, const char *e) {
  while (s < e && (*s == ' ' || *s == '\t' || *s == '\n' || *s == '\r')) s++;
  return s;
}

/* Past the string that starts at s (at its quote); NULL if unterminated. */
static const char *skip_string(const char *s, const char *e) {
  for (s++; s < e; s++) {
    if (*s == '\\') s++;
    else if (*s == '"') return s + 1;
  }
  return NULL;
}

static const char *skip_value(const char *s, const char *e) {
  int depth = 0;
  while (s < e) {
    if (*s == '"') {
      if (!(s = skip_string(s, e))) return NULL;
    } else if (*s == '{' || *s == '[') depth++, s++;
    else if (*s == '}' || *s == ']') {
      if (depth == 0) return s;
      depth--, s++;
    } else if (*s == ',' && depth == 0) return s;
    else s++;
  }
  return depth == 0 ? s : NULL;
}

/* Copies the JSON string at s (plain characters and \" \\ \/ only) to out. */
static int copy_string(const char *s, const char *e, char *out, size_t cap) {
  size_t n = 0;
  for (s++; s < e && *s != '"'; s++) {
    if (*s == '\\') {
      if (++s >= e || (*s != '"' && *s != '\\' && *s != '/')) return 0;
    }
    if (n + 1 >= cap) return 0;
    out[n++] = *s;
  }
  out[n] = 0;
  return s < e;
}

/* The top-level key's value: a string copied into out (1), a number into *num (2), else 0. */
static int config_key(const struct buf *in, const char *key, char *out, size_t cap, double *num) {
  const char *s = ws(in->p, in->p + in->n), *e = in->p + in->n;
  size_t klen = strlen(key);
  int found = 0;
  if (s >= e || *s != '{') return 0;
  for (s = ws(s + 1, e); s < e && *s == '"';) {
    const char *k = s, *v;
    if (!(s = skip_string(s, e))) return 0;
    int match = (size_t)(s - k) == klen + 2 && memcmp(k + 1, key, klen) == 0;
    s = ws(s, e);
    if (s >= e || *s != ':') return 0;
    v = s = ws(s + 1, e);
    if (!(s = skip_value(s, e))) return 0;
    if (match && v < e && *v == '"') found = copy_string(v, s, out, cap);
    else if (match && v < e && (*v == '-' || (*v >= '0' && *v <= '9'))) {
      char *end;
      *num = strtod(v, &end);
      found = end > v ? 2 : 0;
    } else if (match) found = 0;
    s = ws(s, e);
    if (s < e && *s == ',') s = ws(s + 1, e);
  }
  return found;
}

/* ------------------------------------------------------------- answers -- */

static void json_string(struct buf *b, const char *s) {
  puts_(b, "\"");
  for (; *s; s++) {
    unsigned char c = (unsigned char)*s;
    char esc[8];
    if (c == '"' || c == '\\') snprintf(esc, sizeof esc, "\\%c", c), puts_(b, esc);
    else if (c < 0x20) snprintf(esc, sizeof esc, "\\u%04x", c), puts_(b, esc);
    else put(b, s, 1);
  }
  puts_(b, "\"");
}

/* The spec's error JSON on stdout; returns the exit code 1. */
static int fail(const char *version, int code, const char *msg, const char *details) {
  struct buf b = {0};
  char num[16];
  puts_(&b, "{\"cniVersion\":");
  json_string(&b, version);
  snprintf(num, sizeof num, ",\"code\":%d", code);
  puts_(&b, num);
  puts_(&b, ",\"msg\":");
  json_string(&b, msg);
  if (details && *details) puts_(&b, ",\"details\":"), json_string(&b, details);
  puts_(&b, "}\n");
  write_all(1, b.p, b.n);
  return 1;
}

/* [spec] VERSION: cniVersion is the one on input (libcni sends {"cniVersion"}), else ours. */
static int version(const struct buf *in) {
  char v[32] = LATEST;
  double unused;
  unsigned a, b, c;
  char extra;
  /* X.Y.Z of digits only, as the daemon's versionResult: sscanf alone also takes " 1", "+1" and "-1". */
  if (config_key(in, "cniVersion", v, sizeof v, &unused) != 1 || strspn(v, "0123456789.") != strlen(v) ||
      sscanf(v, "%u.%u.%u%c", &a, &b, &c, &extra) != 3)
    strcpy(v, LATEST);
  struct buf out = {0};
  puts_(&out, "{\"cniVersion\":\"");
  puts_(&out, v);
  puts_(&out, "\",\"supportedVersions\":" VERSIONS "}\n");
  write_all(1, out.p, out.n);
  return 0;
}

/* ----------------------------------------------------------- the daemon -- */

enum outcome { ANSWERED, UNREACHABLE, GARBLED };

/* Sends the request; the daemon's answer in *ans, or why not in why. */
static enum outcome ask(const char *sock, const char *self, const struct buf *body, long long deadline,
                        struct buf *ans, char *why, size_t whycap) {
  struct sockaddr_un a = {.sun_family = AF_UNIX};
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  strncpy(a.sun_path, sock, sizeof a.sun_path - 1);
  if (fd < 0 || connect(fd, (struct sockaddr *)&a, sizeof a) < 0) {
    snprintf(why, whycap, "%s: %s", sock, strerror(errno));
    return UNREACHABLE;
  }
  char head[400];
  int hn = snprintf(head, sizeof head,
                    "POST /v1/cni HTTP/1.1\r\nHost: eniway\r\nContent-Type: application/vnd.eniway.cni\r\n"
                    "Eniway-Plugin: %s\r\nContent-Length: %zu\r\nConnection: close\r\n\r\n",
                    self, body->n);
  /* Non-blocking from here: a daemon that does not read the request (stopped, stuck) holds us no longer than the timeout. */
  fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
  if ((!send_all(fd, head, (size_t)hn, deadline) || !send_all(fd, body->p, body->n, deadline)) &&
      errno == EAGAIN) { /* else the daemon closed: its answer, if any, says why */
    snprintf(why, whycap, "no answer from %s within the timeout", sock);
    close(fd);
    return UNREACHABLE;
  }
  char chunk[16384];
  for (;;) {
    if (!wait_fd(fd, POLLIN, deadline)) {
      snprintf(why, whycap, "no answer from %s within the timeout", sock);
      close(fd);
      return UNREACHABLE;
    }
    ssize_t r = read(fd, chunk, sizeof chunk);
    if (r < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (r <= 0) break;
    put(ans, chunk, (size_t)r);
    if (ans->n > MAX_INPUT) break;
  }
  close(fd);
  const char *end = ans->p ? strstr(ans->p, "\r\n\r\n") : NULL;
  int status = 0;
  if (!end || sscanf(ans->p, "HTTP/1.%*d %d", &status) != 1) {
    snprintf(why, whycap, "%s closed the connection without a complete answer", sock);
    return ans->n == 0 ? UNREACHABLE : GARBLED;
  }
  size_t off = (size_t)(end + 4 - ans->p);
  memmove(ans->p, ans->p + off, ans->n - off);
  ans->n -= off;
  ans->p[ans->n] = 0;
  if (status != 200) {
    snprintf(why, whycap, "eniway daemon answered HTTP %d: %.200s", status, ans->p);
    return GARBLED;
  }
  return ANSWERED;
}

/* DEL with the daemon away: the request itself, kept durably in SOCKET.del/ for the daemon. */
static int record_del(const char *sock, const struct buf *body, char *why, size_t whycap) {
  char dir[sizeof(((struct sockaddr_un *)0)->sun_path) + 8], tmp[sizeof dir + 64], name[sizeof dir + 64];
  struct timespec t;
  clock_gettime(CLOCK_REALTIME, &t);
  snprintf(dir, sizeof dir, "%s.del", sock);
  snprintf(tmp, sizeof tmp, "%s/.%lld-%ld-%d.tmp", dir, (long long)t.tv_sec, t.tv_nsec, (int)getpid());
  snprintf(name, sizeof name, "%s/%lld-%09ld-%d.del", dir, (long long)t.tv_sec, t.tv_nsec, (int)getpid());
  if (mkdir(dir, 0700) < 0 && errno != EEXIST) goto failed;
  int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) goto failed;
  if (!write_all(fd, body->p, body->n) || fsync(fd) < 0 || close(fd) < 0 || rename(tmp, name) < 0) {
    unlink(tmp);
    goto failed;
  }
  int d = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (d >= 0) fsync(d), close(d);
  return 1;
failed:
  snprintf(why, whycap, "cannot record the DEL in %s: %s", dir, strerror(errno));
  return 0;
}

/* All of stdin, also from a non-blocking descriptor; -1 on a read error. */
static int read_stdin(struct buf *in) {
  char chunk[16384];
  if (isatty(0)) return 0;
  for (;;) {
    ssize_t r = read(0, chunk, sizeof chunk);
    if (r > 0 && in->n + (size_t)r <= MAX_INPUT) put(in, chunk, (size_t)r);
    else if (r > 0) return errno = EFBIG, -1;
    else if (r == 0) return 0;
    else if (errno == EAGAIN) wait_fd(0, POLLIN, now_ms() + 1000);
    else if (errno != EINTR) return errno == EBADF ? 0 : -1;
  }
}

/* The name this program was started as ([spec] a config's `type` names it), when it is a plain name. */
static const char *own_name(const char *argv0) {
  const char *n = argv0 ? strrchr(argv0, '/') : NULL;
  n = n ? n + 1 : argv0 ? argv0 : "";
  if (!*n || strlen(n) > 64 || strspn(n, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != strlen(n))
    return "eniway";
  return n;
}

int main(int argc, char **argv) {
  struct buf in = {0}, body = {0}, ans = {0};
  const char *cmd = getenv("CNI_COMMAND");
  char sock[sizeof(((struct sockaddr_un *)0)->sun_path)] = DEFAULT_SOCKET, ver[32] = LATEST, why[512];
  double timeout = 60, unused;
  signal(SIGPIPE, SIG_IGN);
  if (!cmd) cmd = "";
  if (read_stdin(&in) < 0) return fail(LATEST, ERR_IO, "error reading from stdin", strerror(errno));
  if (strcmp(cmd, "VERSION") == 0) return version(&in);
  if (config_key(&in, "socket", sock, sizeof sock, &unused) != 1 || sock[0] != '/')
    strcpy(sock, DEFAULT_SOCKET); /* the daemon at the default socket says what is wrong */
  if (config_key(&in, "timeoutSeconds", why, sizeof why, &timeout) != 2 || !(timeout > 0 && timeout <= 3600))
    timeout = 60;
  if (config_key(&in, "cniVersion", ver, sizeof ver, &unused) != 1 || ver[0] == 0) strcpy(ver, LATEST);
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "CNI_", 4) == 0) put(&body, *e, strlen(*e) + 1);
  put(&body, "", 1);
  put(&body, in.p ? in.p : "", in.n);

  enum outcome o = ask(sock, own_name(argc > 0 ? argv[0] : NULL), &body, now_ms() + (long long)(timeout * 1000), &ans, why, sizeof why);
  if (o == ANSWERED) {
    char *nl = memchr(ans.p, '\n', ans.n);
    char *end;
    long code = strtol(ans.p, &end, 10);
    if (nl && end == nl && code >= 0 && code < 256) {
      write_all(1, nl + 1, ans.n - (size_t)(nl + 1 - ans.p));
      return (int)code;
    }
    snprintf(why, sizeof why, "eniway daemon gave an answer without an exit code");
    o = GARBLED;
  }
  if (strcmp(cmd, "DEL") == 0 && o == UNREACHABLE) {
    char err[600];
    if (record_del(sock, &body, err, sizeof err)) return 0;
    return fail(ver, ERR_IO, "eniway daemon not reachable and the DEL could not be recorded", err);
  }
  if (o == GARBLED) return fail(ver, ERR_INTERNAL, "eniway daemon gave no usable answer", why);
  if (strcmp(cmd, "STATUS") == 0)
    return fail(ver, ERR_NOT_AVAILABLE, "plugin not available", why);
  return fail(ver, ERR_TRY_LATER, "try again later: eniway daemon not reachable", why);
}
