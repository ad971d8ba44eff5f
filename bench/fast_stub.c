// fast_stub: the upstream of the benchmarks. A single-threaded epoll HTTP/1.1 server on loopback
// that answers every POST, keep-alive, with a fixed OpenAI chat completion:
//   - a JSON completion with usage (Content-Length), unless the body asks for a stream;
//   - "stream": true  -> an SSE stream (chunked): kChunks content chunks, a usage chunk
//     ("choices": []) and "data: [DONE]", all in one write;
//   - "stream": true and a body mentioning "bench-slow" -> the same events, one every
//     --slow-interval-ms (for many long-lived concurrent streams);
//   - POST /v1/messages -> the same answers in Anthropic's Messages format (a message, or its
//     event stream in one write), for a model whose upstream speaks it.
// It parses only what it needs (request line, Content-Length or chunked body end) and is much
// faster than any gateway measured through it. GET /content prints the text a client must
// assemble from the stream (the fidelity check reads it).
//
//   fast_stub --port N [--slow-interval-ms 1000]
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "stub_bodies.h"

enum { kChunks = KG_STUB_CHUNKS, kMaxConns = 1 << 17, kBufCap = 1 << 16 };

typedef struct {
  char* in;
  size_t in_len;
  char* out;
  size_t out_len, out_off, out_cap;
  int slow_next;           // slow stream: index of the next event to send; -1 = none
  long long slow_due_ms;   // when it is due
  int want_out;            // EPOLLOUT registered
} Conn;

static Conn* conns[kMaxConns];
static int max_fd;
static int epfd;
static int slow_interval_ms = 1000;
static char* json_resp;
static size_t json_resp_len;
static char* sse_resp;
static size_t sse_resp_len;
static char* sse_events[kChunks + 2];  // each a complete HTTP chunk ("<hex>\r\n<event>\r\n")
static char* anthropic_json_resp;
static size_t anthropic_json_resp_len;
static char* anthropic_sse_resp;
static size_t anthropic_sse_resp_len;
static char sse_head[] =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
    "Transfer-Encoding: chunked\r\n\r\n";
static char content_text[4096];

static long long NowMs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char* Dup(const char* s) {
  char* d = strdup(s);
  if (!d) abort();
  return d;
}

// A whole JSON response with `body`; its length in *len.
static char* JsonResponse(const char* body, size_t* len) {
  char buf[2048];
  *len = (size_t)snprintf(buf, sizeof buf,
                          "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                          "Content-Length: %zu\r\n\r\n%s",
                          strlen(body), body);
  return Dup(buf);
}

static void BuildResponses(void) {
  json_resp = JsonResponse(KG_STUB_JSON_BODY, &json_resp_len);

  size_t total = strlen(sse_head);
  content_text[0] = '\0';
  for (int i = 0; i < kChunks + 2; ++i) {
    char ev[1024];
    if (i < kChunks) {
      char piece[64];
      snprintf(piece, sizeof piece, KG_STUB_PIECE_FMT, i);
      strcat(content_text, piece);
      snprintf(ev, sizeof ev, KG_STUB_CONTENT_EVENT_FMT, piece,
               i == kChunks - 1 ? "\"stop\"" : "null");
    } else if (i == kChunks) {
      snprintf(ev, sizeof ev, KG_STUB_USAGE_EVENT_FMT, kChunks, 25 + kChunks);
    } else {
      snprintf(ev, sizeof ev, KG_STUB_DONE_EVENT);
    }
    char chunk[1100];
    snprintf(chunk, sizeof chunk, "%zx\r\n%s\r\n", strlen(ev), ev);
    sse_events[i] = Dup(chunk);
    total += strlen(chunk);
  }
  total += 5;  // "0\r\n\r\n"
  sse_resp = malloc(total + 1);
  if (!sse_resp) abort();
  strcpy(sse_resp, sse_head);
  for (int i = 0; i < kChunks + 2; ++i) strcat(sse_resp, sse_events[i]);
  strcat(sse_resp, "0\r\n\r\n");
  sse_resp_len = total;

  // Anthropic: the message with a Content-Length; the stream as one HTTP chunk per event.
  anthropic_json_resp = JsonResponse(KG_STUB_ANTHROPIC_JSON_BODY, &anthropic_json_resp_len);
  char* out = malloc(16384);
  if (!out) abort();
  strcpy(out, sse_head);
  char ev[1024], chunk[1100];
  for (int i = 0; i < kChunks + 2; ++i) {
    if (i == 0) {
      snprintf(ev, sizeof ev, "%s", KG_STUB_ANTHROPIC_START);
    } else if (i <= kChunks) {
      char piece[64];
      snprintf(piece, sizeof piece, KG_STUB_PIECE_FMT, i - 1);
      snprintf(ev, sizeof ev, KG_STUB_ANTHROPIC_DELTA_FMT, piece);
    } else {
      snprintf(ev, sizeof ev, KG_STUB_ANTHROPIC_END_FMT, kChunks);
    }
    snprintf(chunk, sizeof chunk, "%zx\r\n%s\r\n", strlen(ev), ev);
    strcat(out, chunk);
  }
  strcat(out, "0\r\n\r\n");
  anthropic_sse_resp = out;
  anthropic_sse_resp_len = strlen(out);
}

static void CloseConn(int fd) {
  Conn* c = conns[fd];
  if (c) {
    free(c->in);
    free(c->out);
    free(c);
    conns[fd] = NULL;
  }
  close(fd);
}

static void Append(Conn* c, const char* p, size_t n) {
  if (c->out_len + n > c->out_cap) {
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + n) cap *= 2;
    c->out = realloc(c->out, cap);
    if (!c->out) abort();
    c->out_cap = cap;
  }
  memcpy(c->out + c->out_len, p, n);
  c->out_len += n;
}

// Writes what is pending; returns -1 when the connection is gone.
static int Flush(int fd, Conn* c) {
  while (c->out_off < c->out_len) {
    ssize_t w = send(fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
    if (w < 0) {
      if (errno == EAGAIN) break;
      return -1;
    }
    c->out_off += (size_t)w;
  }
  if (c->out_off == c->out_len) c->out_off = c->out_len = 0;
  int want_out = c->out_len != 0;
  if (want_out != c->want_out) {  // a syscall only when the interest changes
    struct epoll_event ev = {.events = EPOLLIN | (want_out ? EPOLLOUT : 0), .data.fd = fd};
    epoll_ctl(epfd, EPOLL_CTL_MOD, fd, &ev);
    c->want_out = want_out;
  }
  return 0;
}

static int HeaderHas(const char* head, size_t head_len, const char* needle, size_t* value_off) {
  size_t n = strlen(needle);
  for (size_t i = 0; i + n <= head_len; ++i) {
    if (strncasecmp(head + i, needle, n) == 0 && i > 0 && head[i - 1] == '\n') {
      if (value_off) *value_off = i + n;
      return 1;
    }
  }
  return 0;
}

// Handles every complete request in c->in; returns -1 on a protocol error.
static int Serve(Conn* c) {
  for (;;) {
    char* end = memmem(c->in, c->in_len, "\r\n\r\n", 4);
    if (!end) return c->in_len > kBufCap ? -1 : 0;
    size_t head_len = (size_t)(end - c->in) + 4;
    size_t body_len = 0, voff = 0;
    int chunked = HeaderHas(c->in, head_len, "transfer-encoding: chunked", NULL);
    if (chunked) {
      char* z = memmem(c->in + head_len, c->in_len - head_len, "\r\n0\r\n\r\n", 7);
      if (!z) {
        if (c->in_len - head_len >= 5 && memcmp(c->in + head_len, "0\r\n\r\n", 5) == 0) {
          body_len = 5;
        } else {
          return 0;
        }
      } else {
        body_len = (size_t)(z - (c->in + head_len)) + 7;
      }
    } else if (HeaderHas(c->in, head_len, "content-length:", &voff)) {
      body_len = strtoul(c->in + voff, NULL, 10);
    }
    if (c->in_len < head_len + body_len) return 0;
    const char* body = c->in + head_len;
    if (strncmp(c->in, "GET /content", 12) == 0) {
      char head[128];
      int n = snprintf(head, sizeof head, "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n",
                       strlen(content_text));
      Append(c, head, (size_t)n);
      Append(c, content_text, strlen(content_text));
    } else {
      int stream = memmem(body, body_len, "\"stream\":true", 13) != NULL ||
                   memmem(body, body_len, "\"stream\": true", 14) != NULL;
      int slow = stream && memmem(body, body_len, "bench-slow", 10) != NULL;
      if (strncmp(c->in, "POST /v1/messages ", 18) == 0) {
        if (stream) {
          Append(c, anthropic_sse_resp, anthropic_sse_resp_len);
        } else {
          Append(c, anthropic_json_resp, anthropic_json_resp_len);
        }
      } else if (slow) {
        Append(c, sse_head, strlen(sse_head));
        Append(c, sse_events[0], strlen(sse_events[0]));
        c->slow_next = 1;
        c->slow_due_ms = NowMs() + slow_interval_ms;
      } else if (stream) {
        Append(c, sse_resp, sse_resp_len);
      } else {
        Append(c, json_resp, json_resp_len);
      }
    }
    size_t used = head_len + body_len;
    memmove(c->in, c->in + used, c->in_len - used);
    c->in_len -= used;
  }
}

static void SlowTick(void) {
  long long now = NowMs();
  for (int fd = 0; fd <= max_fd; ++fd) {
    Conn* c = conns[fd];
    if (!c || c->slow_next < 0 || c->slow_due_ms > now) continue;
    Append(c, sse_events[c->slow_next], strlen(sse_events[c->slow_next]));
    if (++c->slow_next == kChunks + 2) {
      Append(c, "0\r\n\r\n", 5);
      c->slow_next = -1;
    } else {
      c->slow_due_ms = now + slow_interval_ms;
    }
    if (Flush(fd, c) < 0) CloseConn(fd);
  }
}

int main(int argc, char** argv) {
  int port = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--port") == 0) port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--slow-interval-ms") == 0) slow_interval_ms = atoi(argv[i + 1]);
  }
  if (port <= 0) {
    fprintf(stderr, "usage: fast_stub --port N [--slow-interval-ms MS]\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN);
  BuildResponses();
  int ls = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  int one = 1;
  setsockopt(ls, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (bind(ls, (struct sockaddr*)&addr, sizeof addr) < 0 || listen(ls, 65535) < 0) {
    perror("fast_stub: bind/listen");
    return 1;
  }
  epfd = epoll_create1(0);
  struct epoll_event lev = {.events = EPOLLIN, .data.fd = ls};
  epoll_ctl(epfd, EPOLL_CTL_ADD, ls, &lev);
  fprintf(stderr, "fast_stub: listening on 127.0.0.1:%d\n", port);
  struct epoll_event events[512];
  long long next_tick = NowMs() + 50;
  char buf[kBufCap];
  for (;;) {
    long long now = NowMs();
    int timeout = next_tick > now ? (int)(next_tick - now) : 0;
    int n = epoll_wait(epfd, events, 512, timeout);
    for (int i = 0; i < n; ++i) {
      int fd = events[i].data.fd;
      if (fd == ls) {
        for (;;) {
          int cfd = accept4(ls, NULL, NULL, SOCK_NONBLOCK);
          if (cfd < 0) break;
          if (cfd >= kMaxConns) {
            close(cfd);
            continue;
          }
          setsockopt(cfd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          Conn* c = calloc(1, sizeof(Conn));
          c->slow_next = -1;
          conns[cfd] = c;
          if (cfd > max_fd) max_fd = cfd;
          struct epoll_event cev = {.events = EPOLLIN, .data.fd = cfd};
          epoll_ctl(epfd, EPOLL_CTL_ADD, cfd, &cev);
        }
        continue;
      }
      Conn* c = conns[fd];
      if (!c) continue;
      if (events[i].events & EPOLLIN) {
        ssize_t r;
        int dead = 0;
        while ((r = recv(fd, buf, sizeof buf, 0)) > 0) {
          c->in = realloc(c->in, c->in_len + (size_t)r);
          memcpy(c->in + c->in_len, buf, (size_t)r);
          c->in_len += (size_t)r;
        }
        if (r == 0 || (r < 0 && errno != EAGAIN)) dead = 1;
        if (!dead && Serve(c) < 0) dead = 1;
        if (dead) {
          CloseConn(fd);
          continue;
        }
      }
      if (Flush(fd, c) < 0) CloseConn(fd);
    }
    if (NowMs() >= next_tick) {
      SlowTick();
      next_tick = NowMs() + 50;
    }
  }
}
