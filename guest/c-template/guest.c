/* A wfetch guest written in C: the C twin of guest/template (Rust). It
 * sends an HTTP/1.0 GET over the host's `streams` import and passes the
 * whole response (head and body, unparsed) to the host's sink.
 *
 * The bindings (fetch_guest.h/.c) are generated from wit/fetch.wit by
 * `wit-bindgen c --world fetch-guest`; build.sh does that. The module is
 * freestanding: no libc and no WASI, only rt/rt.c (allocator, memcpy...),
 * so the component imports nothing but wfetch:fetch.
 *
 * Ownership, as wit-bindgen's C bindings define it:
 * - arguments of an export (the request) belong to the export: free them;
 * - what an export returns is freed by the generated post-return function
 *   with free(), so every string or list in it must come from malloc;
 * - arguments of an import are only borrowed by the host: stack or static
 *   data is fine;
 * - results of an import (read data, errors) belong to the guest;
 * - a borrowed resource handed to an export (the sink) must be dropped
 *   before the export returns (the generator's --autodrop-borrows is off).
 */

#include <stdlib.h>
#include <string.h>

#include "fetch_guest.h"

typedef exports_wfetch_fetch_fetcher_request_t request_t;
typedef exports_wfetch_fetch_fetcher_request_error_t request_error_t;
typedef exports_wfetch_fetch_fetcher_fetch_error_t fetch_error_t;
typedef exports_wfetch_fetch_fetcher_fetch_response_t fetch_response_t;
typedef wfetch_fetch_streams_stream_error_t stream_error_t;

#define READ_SIZE (64 * 1024)

/* ---- small helpers ---------------------------------------------------- */

/* A growable byte buffer. */
typedef struct {
    uint8_t *ptr;
    size_t len, cap;
} buf_t;

static void buf_push(buf_t *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->len + n)
            cap *= 2;
        b->ptr = realloc(b->ptr, cap);
        if (!b->ptr)
            abort();
        b->cap = cap;
    }
    memcpy(b->ptr + b->len, data, n);
    b->len += n;
}

static void buf_str(buf_t *b, const char *s) {
    buf_push(b, s, strlen(s));
}

/* A malloc'd copy, as returned values must be. */
static fetch_guest_string_t dup_n(const uint8_t *s, size_t n) {
    fetch_guest_string_t out = {NULL, 0};
    if (n) {
        out.ptr = malloc(n);
        if (!out.ptr)
            abort();
        memcpy(out.ptr, s, n);
        out.len = n;
    }
    return out;
}

static fetch_guest_string_t dup_c(const char *s) {
    return dup_n((const uint8_t *)s, strlen(s));
}

static int starts_with(const uint8_t *s, size_t n, const char *prefix) {
    size_t p = strlen(prefix);
    return n >= p && memcmp(s, prefix, p) == 0;
}

/* ---- the URL ---------------------------------------------------------- */

/* `http://host[:port]/path` or `https://...`, split by hand. The pieces
 * point into the URL. */
typedef struct {
    int tls;
    const uint8_t *authority; /* host[:port] as written, for Host: */
    size_t authority_len;
    const uint8_t *host; /* without brackets, for open-connection */
    size_t host_len;
    uint16_t port;
    const uint8_t *path; /* with the query, without the fragment */
    size_t path_len;
} target_t;

static int split(const fetch_guest_string_t *url, target_t *t, request_error_t *err) {
    const uint8_t *s = url->ptr;
    size_t n = url->len, i;
    memset(t, 0, sizeof *t);
    if (starts_with(s, n, "http://")) {
        i = 7;
    } else if (starts_with(s, n, "https://")) {
        t->tls = 1;
        i = 8;
    } else {
        size_t colon = 0;
        while (colon < n && s[colon] != ':')
            colon++;
        err->tag = EXPORTS_WFETCH_FETCH_FETCHER_REQUEST_ERROR_UNSUPPORTED_SCHEME;
        err->val.unsupported_scheme = dup_n(s, colon);
        return 0;
    }
    /* The authority ends at the path, the query or the fragment. */
    size_t a = i;
    while (i < n && s[i] != '/' && s[i] != '?' && s[i] != '#')
        i++;
    t->authority = s + a;
    t->authority_len = i - a;
    size_t end = i;
    while (end < n && s[end] != '#')
        end++;
    t->path = s + i;
    t->path_len = end - i;

    /* host[:port], host may be a bracketed IPv6 literal. */
    const uint8_t *h = t->authority;
    size_t hl = t->authority_len, colon = hl;
    size_t search_from = 0;
    if (hl && h[0] == '[') {
        while (search_from < hl && h[search_from] != ']')
            search_from++;
        if (search_from == hl)
            goto invalid;
    }
    for (size_t k = hl; k > search_from; k--) {
        if (h[k - 1] == ':') {
            colon = k - 1;
            break;
        }
    }
    if (colon < hl) {
        uint32_t port = 0;
        if (colon + 1 == hl)
            goto invalid;
        for (size_t k = colon + 1; k < hl; k++) {
            if (h[k] < '0' || h[k] > '9')
                goto invalid;
            port = port * 10 + (h[k] - '0');
            if (port > 65535)
                goto invalid;
        }
        t->port = (uint16_t)port;
    } else {
        t->port = t->tls ? 443 : 80;
    }
    t->host = h;
    t->host_len = colon;
    if (t->host_len >= 2 && h[0] == '[' && h[t->host_len - 1] == ']') {
        t->host++;
        t->host_len -= 2;
    }
    if (t->host_len == 0)
        goto invalid;
    return 1;

invalid:
    err->tag = EXPORTS_WFETCH_FETCH_FETCHER_REQUEST_ERROR_INVALID_URL;
    err->val.invalid_url = dup_n(url->ptr, url->len);
    return 0;
}

/* The request, malloc'd (so that build-request can return it as is). */
static fetch_guest_list_u8_t request_bytes(const target_t *t) {
    buf_t b = {0};
    buf_str(&b, "GET ");
    if (t->path_len == 0 || t->path[0] != '/')
        buf_str(&b, "/");
    buf_push(&b, t->path, t->path_len);
    buf_str(&b, " HTTP/1.0\r\nHost: ");
    buf_push(&b, t->authority, t->authority_len);
    buf_str(&b, "\r\nUser-Agent: wfetch-c-template\r\n\r\n");
    return (fetch_guest_list_u8_t){b.ptr, b.len};
}

/* ---- the exports ------------------------------------------------------ */

bool exports_wfetch_fetch_fetcher_build_request(request_t *req, fetch_guest_list_u8_t *ret,
                                                request_error_t *err) {
    target_t t;
    int ok = split(&req->url, &t, err);
    if (ok)
        *ret = request_bytes(&t);
    exports_wfetch_fetch_fetcher_request_free(req);
    return ok;
}

bool exports_wfetch_fetch_fetcher_parse_response_head(fetch_guest_list_u8_t *data,
                                                      exports_wfetch_fetch_fetcher_head_parse_t *ret,
                                                      fetch_guest_string_t *err) {
    (void)ret;
    fetch_guest_list_u8_free(data);
    *err = dup_c("the C template does not parse heads");
    return false;
}

bool exports_wfetch_fetch_fetcher_fetch(request_t *req, exports_wfetch_fetch_fetcher_borrow_body_sink_t sink,
                                        fetch_response_t *ret, fetch_error_t *err) {
    bool ok = false;
    int connected = 0;
    wfetch_fetch_streams_tuple2_own_stream_reader_own_stream_writer_t conn;
    wfetch_fetch_streams_borrow_stream_reader_t reader = {0};
    wfetch_fetch_streams_borrow_stream_writer_t writer = {0};
    fetch_guest_list_u8_t request = {NULL, 0};
    target_t t;

    if (!split(&req->url, &t, &err->val.request)) {
        err->tag = EXPORTS_WFETCH_FETCH_FETCHER_FETCH_ERROR_REQUEST;
        goto done;
    }

    /* Import arguments are borrowed: these can point into the request and
     * at static strings. */
    fetch_guest_string_t host = {(uint8_t *)t.host, t.host_len};
    fetch_guest_string_t alpn[1];
    fetch_guest_string_set(&alpn[0], "http/1.1");
    wfetch_fetch_streams_open_options_t options = {0};
    if (t.tls) {
        options.tls.is_some = true;
        options.tls.val.server_name = host;
        options.tls.val.alpn = (fetch_guest_list_string_t){alpn, 1};
    }
    if (!wfetch_fetch_streams_open_connection(&host, t.port, &options, &conn, &err->val.transport)) {
        err->tag = EXPORTS_WFETCH_FETCH_FETCHER_FETCH_ERROR_TRANSPORT;
        goto done;
    }
    connected = 1;
    reader = wfetch_fetch_streams_borrow_stream_reader(conn.f0);
    writer = wfetch_fetch_streams_borrow_stream_writer(conn.f1);

    request = request_bytes(&t);
    wfetch_fetch_sink_method_body_sink_request_sent(sink, &request);
    if (!wfetch_fetch_streams_method_stream_writer_write(writer, &request, &err->val.transport) ||
        !wfetch_fetch_streams_method_stream_writer_drain(writer, &err->val.transport)) {
        err->tag = EXPORTS_WFETCH_FETCH_FETCHER_FETCH_ERROR_TRANSPORT;
        goto done;
    }

    /* HTTP/1.0 without keep-alive: the server closes when done. The head
     * handed to the sink says "raw": what follows is the whole response. */
    fetch_guest_string_t version, reason;
    fetch_guest_string_set(&version, "raw");
    fetch_guest_string_set(&reason, "OK");
    wfetch_fetch_sink_response_head_t head = {version, 200, reason, {NULL, 0}};
    fetch_guest_list_u8_t no_raw = {NULL, 0};
    wfetch_fetch_sink_method_body_sink_response_head(sink, &head, &no_raw);

    uint64_t total = 0;
    for (;;) {
        fetch_guest_list_u8_t data;
        if (!wfetch_fetch_streams_method_stream_reader_read(reader, READ_SIZE, &data, &err->val.receive)) {
            err->tag = EXPORTS_WFETCH_FETCH_FETCHER_FETCH_ERROR_RECEIVE;
            goto done;
        }
        if (data.len == 0)
            break;
        total += data.len;
        int written = wfetch_fetch_sink_method_body_sink_write(sink, &data, &err->val.sink);
        fetch_guest_list_u8_free(&data);
        if (!written) {
            err->tag = EXPORTS_WFETCH_FETCH_FETCHER_FETCH_ERROR_SINK;
            goto done;
        }
    }

    /* The returned value is freed by the post-return function: all of it
     * is malloc'd. */
    ret->head.version = dup_c("raw");
    ret->head.status = 200;
    ret->head.reason = dup_c("OK");
    ret->head.headers = (wfetch_fetch_types_list_header_t){NULL, 0};
    ret->url = dup_n(req->url.ptr, req->url.len);
    ret->hops = (exports_wfetch_fetch_fetcher_list_hop_t){NULL, 0};
    ret->body_bytes = total;
    ok = true;

done:
    if (connected) {
        wfetch_fetch_streams_method_stream_writer_close(writer);
        wfetch_fetch_streams_stream_reader_drop_own(conn.f0);
        wfetch_fetch_streams_stream_writer_drop_own(conn.f1);
    }
    fetch_guest_list_u8_free(&request);
    exports_wfetch_fetch_fetcher_request_free(req);
    wfetch_fetch_sink_body_sink_drop_borrow(sink);
    return ok;
}
