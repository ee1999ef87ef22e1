/*
 * Compiled twin of scan.scan_lines: parser, request joiner and detector for offline scans.
 *
 * The Python modules (plexlog, detect, scan) are the reference and the live monitor's code;
 * this file mirrors them for `plex-security-helper scan`, where a months-long log must be
 * judged in seconds. Everything that decides what a path, an address or a timestamp means is
 * asked of the Python side once per distinct value and cached here: path classes
 * (detect.path_flags), address facts (canonical form, source key, /24 or /64, public or not),
 * local-time epochs and alert building. Lines with non-ASCII bytes, and ASCII lines this
 * parser refuses but that might be access lines, are parsed by plexlog.LogParser itself, so
 * Unicode regex semantics never have to be re-implemented. tests/helper/test_fastscan.py
 * checks that both pipelines give identical reports and alerts.
 */
#define _GNU_SOURCE /* memmem */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* ---- byte-string keyed hash map that remembers insertion order (like a dict) ---- */

typedef struct Node {
    struct Node *prev, *next;
    uint64_t hash;
    union {
        void *p;
        intptr_t i;
        double d;
    } v;
    Py_ssize_t klen;
    char key[];
} Node;

/* Slots keep the hash next to the node pointer: a probe that passes a different key never
   has to touch that node's memory (the misses dominate on a table of 40,000 connections). */
typedef struct {
    uint64_t hash;
    Node *node; /* NULL: empty; TOMB: deleted */
} Slot;

typedef struct {
    Slot *slots;
    size_t cap, used, filled;
    Node *head, *tail;
    void (*free_val)(void *);
} Map;

static Node TOMB_NODE;
#define TOMB (&TOMB_NODE)

/* Keyed by a per-scanner random seed, so that crafted paths cannot be made to collide. */
static uint64_t
hash_bytes(uint64_t seed, const char *p, Py_ssize_t n)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ull);
    while (n >= 8) {
        uint64_t k;
        memcpy(&k, p, 8);
        h = (h ^ k) * 0xbf58476d1ce4e5b9ull;
        h ^= h >> 31;
        p += 8;
        n -= 8;
    }
    uint64_t k = 0;
    memcpy(&k, p, (size_t)n);
    h = (h ^ k) * 0x94d049bb133111ebull;
    h ^= h >> 29;
    h *= 0xbf58476d1ce4e5b9ull;
    h ^= h >> 32;
    return h;
}

static int
map_init(Map *m, void (*free_val)(void *))
{
    memset(m, 0, sizeof(*m));
    m->cap = 64;
    m->slots = calloc(m->cap, sizeof(Slot));
    m->free_val = free_val;
    if (m->slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    return 0;
}

static size_t
map_slot(const Map *m, const char *key, Py_ssize_t klen, uint64_t h)
{
    size_t mask = m->cap - 1, i = (size_t)h & mask;
    for (;;) {
        const Slot *sl = &m->slots[i];
        if (sl->node == NULL)
            return i;
        if (sl->hash == h && sl->node != TOMB && sl->node->klen == klen
            && memcmp(sl->node->key, key, (size_t)klen) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static Node *
map_get(const Map *m, const char *key, Py_ssize_t klen, uint64_t h)
{
    Node *n = m->slots[map_slot(m, key, klen, h)].node;
    return n == TOMB ? NULL : n;
}

static int
map_grow(Map *m)
{
    size_t cap = m->cap;
    if ((m->used + 1) * 4 > cap)
        cap *= 2; /* otherwise the same size, just without tombstones */
    Slot *slots = calloc(cap, sizeof(Slot));
    if (slots == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
    m->filled = m->used;
    for (Node *n = m->head; n != NULL; n = n->next) {
        size_t i = (size_t)n->hash & (cap - 1);
        while (slots[i].node != NULL)
            i = (i + 1) & (cap - 1);
        slots[i].hash = n->hash;
        slots[i].node = n;
    }
    return 0;
}

#define KEY_SPACE(klen) (((size_t)(klen) + 7) & ~(size_t)7)
/* Bytes stored with a node after its key (map_add_sized). */
#define PAYLOAD(n) ((void *)((n)->key + KEY_SPACE((n)->klen)))

/* Insert a key known to be absent, with *payload* bytes of room; the node is last in order. */
static Node *
map_add_sized(Map *m, const char *key, Py_ssize_t klen, uint64_t h, size_t payload)
{
    if ((m->filled + 1) * 2 > m->cap && map_grow(m) < 0)
        return NULL;
    Node *n = malloc(sizeof(Node) + KEY_SPACE(klen) + payload);
    if (n == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    n->hash = h;
    n->klen = klen;
    memcpy(n->key, key, (size_t)klen);
    n->v.p = NULL;
    n->next = NULL;
    n->prev = m->tail;
    if (m->tail)
        m->tail->next = n;
    else
        m->head = n;
    m->tail = n;
    size_t i = (size_t)h & (m->cap - 1);
    while (m->slots[i].node != NULL && m->slots[i].node != TOMB)
        i = (i + 1) & (m->cap - 1);
    if (m->slots[i].node == NULL)
        m->filled++;
    m->slots[i].hash = h;
    m->slots[i].node = n;
    m->used++;
    return n;
}

static Node *
map_add(Map *m, const char *key, Py_ssize_t klen, uint64_t h)
{
    return map_add_sized(m, key, klen, h, 0);
}

/* Unlink and free the node in slot i (its value is the caller's). */
static void
map_remove_at(Map *m, size_t i)
{
    Node *n = m->slots[i].node;
    m->slots[i].node = TOMB;
    if (n->prev)
        n->prev->next = n->next;
    else
        m->head = n->next;
    if (n->next)
        n->next->prev = n->prev;
    else
        m->tail = n->prev;
    m->used--;
    free(n);
}

static void
map_remove(Map *m, Node *n)
{
    map_remove_at(m, map_slot(m, n->key, n->klen, n->hash));
}

static void
map_clear(Map *m)
{
    Node *n = m->head;
    while (n != NULL) {
        Node *next = n->next;
        if (m->free_val && n->v.p)
            m->free_val(n->v.p);
        free(n);
        n = next;
    }
    memset(m->slots, 0, m->cap * sizeof(Slot));
    m->head = m->tail = NULL;
    m->used = m->filled = 0;
}

static void
map_free(Map *m)
{
    if (m->slots == NULL)
        return;
    map_clear(m);
    free(m->slots);
    m->slots = NULL;
}

/* ---- sliding windows: a deque of times, oldest first ---- */

typedef struct {
    double *v;
    Py_ssize_t head, len, cap;
} Win;

static int
win_push(Win *w, double t)
{
    if (w->len == w->cap) {
        Py_ssize_t cap = w->cap ? w->cap * 2 : 8;
        double *v = malloc((size_t)cap * sizeof(double));
        if (v == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        for (Py_ssize_t i = 0; i < w->len; i++)
            v[i] = w->v[(w->head + i) & (w->cap - 1)];
        free(w->v);
        w->v = v;
        w->cap = cap;
        w->head = 0;
    }
    w->v[(w->head + w->len) & (w->cap - 1)] = t;
    w->len++;
    return 0;
}

static void
win_trim(Win *w, double limit)
{
    while (w->len && w->v[w->head] < limit) {
        w->head = (w->head + 1) & (w->cap - 1);
        w->len--;
    }
}

/* ---- the detector's per-source state (detect._Source) ---- */

typedef struct {
    Win failures, probes, minute;
    PyObject *misses;  /* dict path -> float, created on first use */
    PyObject *quiet;   /* dict "kind:user" -> float */
    PyObject *samples; /* list of sanitised paths */
    double trusted_until, last_seen;
} Src;

static void
src_free(void *p)
{
    Src *s = p;
    free(s->failures.v);
    free(s->probes.v);
    free(s->minute.v);
    Py_XDECREF(s->misses);
    Py_XDECREF(s->quiet);
    Py_XDECREF(s->samples);
    free(s);
}

/* ---- what the Python side said about an address, a path, a user ---- */

typedef struct {
    PyObject *ip, *skey, *unet;
    int is_public;
    Py_ssize_t requests, failed, probes;
    Src *src;
    uint64_t src_gen;
} IpRec;

enum { F_PROBE = 1, F_BENIGN = 2, F_LOG_WRITE = 4, F_LOG_INJECTION = 8 };

typedef struct {
    PyObject *path, *sample;
    int flags;
} PathInfo;

static void
pathinfo_free(void *p)
{
    PathInfo *pi = p;
    Py_XDECREF(pi->path);
    Py_XDECREF(pi->sample);
    free(pi);
}

typedef struct {
    PyObject *name, *nets;
} UserInfo;

static void
userinfo_free(void *p)
{
    UserInfo *u = p;
    Py_XDECREF(u->name);
    Py_XDECREF(u->nets);
    free(u);
}

/* A Request line waiting for its Completed line. */
typedef struct {
    int port, cls, signed_in;
    UserInfo *user;
} Pending;

/* NetClass, in plexlog's order; -1 is "no class in the line". */
enum { C_WAN, C_SUBNET, C_LOOPBACK, C_ALLOWED_SUBNET, C_ALLOWED_WAN, C_UNKNOWN, N_CLASSES };
static const char *CLASS_NAMES[N_CLASSES] = {
    "WAN", "Subnet", "Loopback", "Allowed Network (Subnet)", "Allowed Network (WAN)", "Unknown",
};

enum { K_BURST, K_PROBE, K_SCAN, K_FLOOD, K_NEW_LOCATION, K_AUTH_BYPASS, K_LOG_INJECTION, N_KINDS };
static const char *KIND_NAMES[N_KINDS] = {
    "failed_login_burst", "probe", "scan", "flood", "new_location", "auth_bypass", "log_injection",
};

typedef struct {
    double time;
    int completed, ip_id, port, cls, status, has_rid, signed_in;
    PathInfo *path;
    UserInfo *user;
    const char *rid;
    Py_ssize_t rid_len;
} Rec;

typedef struct {
    PyObject_HEAD
    /* callbacks into the reference implementation */
    PyObject *facts, *classify, *sanitise, *epoch, *parse, *alert;
    PyObject *trace; /* None, or called with every record and event (tests compare them) */
    /* thresholds (DetectConfig) */
    double window, threshold, scan_window, trust, factor, flood;
    uint64_t seed;
    Py_ssize_t probe_threshold, scan_paths, max_sources, capacity;
    /* state */
    Map addrs, canon, paths, users, pending, by_port, minutes, seconds, sources;
    Node *last_addr, *last_path; /* the latest hits of addrs and paths */
    IpRec *ips;
    Py_ssize_t n_ips, cap_ips;
    uint64_t src_gen;
    char last_second[21];
    double last_epoch;
    int have_last;
    double q_until;
    int q_owner;
    long long lines, parsed;
    char *keybuf;
    Py_ssize_t keycap;
    PyObject *class_str[N_CLASSES], *kind_str[N_KINDS], *quiet_plain[N_KINDS], *empty;
} Scanner;

/* ---- lookups with a cache in front of the Python side ---- */

static int
new_ip(Scanner *s, PyObject *facts)
{
    if (s->n_ips == s->cap_ips) {
        Py_ssize_t cap = s->cap_ips ? s->cap_ips * 2 : 256;
        IpRec *ips = realloc(s->ips, (size_t)cap * sizeof(IpRec));
        if (ips == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        s->ips = ips;
        s->cap_ips = cap;
    }
    IpRec *r = &s->ips[s->n_ips];
    memset(r, 0, sizeof(*r));
    r->ip = Py_NewRef(PyTuple_GET_ITEM(facts, 0));
    r->skey = Py_NewRef(PyTuple_GET_ITEM(facts, 1));
    r->unet = Py_NewRef(PyTuple_GET_ITEM(facts, 2));
    r->is_public = PyObject_IsTrue(PyTuple_GET_ITEM(facts, 3));
    return (int)s->n_ips++;
}

/* Address text (bracketed or not) -> index into s->ips, -2 for an invalid address, -1 on error. */
static int
ip_lookup(Scanner *s, const char *text, Py_ssize_t n)
{
    /* a Completed line usually names the address its Request line just did */
    Node *node = s->last_addr;
    if (node != NULL && node->klen == n && memcmp(node->key, text, (size_t)n) == 0)
        return (int)node->v.i;
    uint64_t h = hash_bytes(s->seed, text, n);
    node = map_get(&s->addrs, text, n, h);
    if (node != NULL) {
        s->last_addr = node;
        return (int)node->v.i;
    }
    if (s->addrs.used >= 65536) {
        map_clear(&s->addrs);
        s->last_addr = NULL;
    }
    PyObject *arg = PyUnicode_DecodeUTF8(text, n, "strict");
    if (arg == NULL)
        return -1;
    PyObject *facts = PyObject_CallOneArg(s->facts, arg);
    Py_DECREF(arg);
    if (facts == NULL)
        return -1;
    int id = -2;
    if (facts != Py_None) {
        if (!PyTuple_Check(facts) || PyTuple_GET_SIZE(facts) != 4) {
            Py_DECREF(facts);
            PyErr_SetString(PyExc_TypeError, "facts() must return a 4-tuple or None");
            return -1;
        }
        Py_ssize_t cn;
        const char *canon = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(facts, 0), &cn);
        if (canon == NULL) {
            Py_DECREF(facts);
            return -1;
        }
        uint64_t ch = hash_bytes(s->seed, canon, cn);
        Node *cnode = map_get(&s->canon, canon, cn, ch);
        if (cnode != NULL) {
            id = (int)cnode->v.i;
        } else {
            id = new_ip(s, facts);
            if (id < 0 || (cnode = map_add(&s->canon, canon, cn, ch)) == NULL) {
                Py_DECREF(facts);
                return -1;
            }
            cnode->v.i = id;
        }
    }
    Py_DECREF(facts);
    if ((node = map_add(&s->addrs, text, n, h)) == NULL)
        return -1;
    node->v.i = id;
    s->last_addr = node;
    return id;
}

static PathInfo *
path_lookup(Scanner *s, const char *text, Py_ssize_t n)
{
    Node *node = s->last_path;
    if (node != NULL && node->klen == n && memcmp(node->key, text, (size_t)n) == 0)
        return node->v.p;
    uint64_t h = hash_bytes(s->seed, text, n);
    node = map_get(&s->paths, text, n, h);
    if (node != NULL) {
        s->last_path = node;
        return node->v.p;
    }
    if (s->paths.used >= 65536) {
        map_clear(&s->paths); /* a pure cache: a spray of unique paths must not grow it */
        s->last_path = NULL;
    }
    PathInfo *pi = calloc(1, sizeof(PathInfo));
    if (pi == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    pi->path = PyUnicode_DecodeUTF8(text, n, "strict");
    if (pi->path == NULL) {
        free(pi);
        return NULL;
    }
    PyObject *flags = PyObject_CallOneArg(s->classify, pi->path);
    if (flags == NULL) {
        pathinfo_free(pi);
        return NULL;
    }
    pi->flags = (int)PyLong_AsLong(flags);
    Py_DECREF(flags);
    if (PyErr_Occurred() || (node = map_add(&s->paths, text, n, h)) == NULL) {
        pathinfo_free(pi);
        return NULL;
    }
    node->v.p = pi;
    s->last_path = node;
    return pi;
}

static UserInfo *
user_lookup(Scanner *s, const char *text, Py_ssize_t n)
{
    uint64_t h = hash_bytes(s->seed, text, n);
    Node *node = map_get(&s->users, text, n, h);
    if (node != NULL)
        return node->v.p;
    UserInfo *u = calloc(1, sizeof(UserInfo));
    if (u == NULL) {
        PyErr_NoMemory();
        return NULL;
    }
    if ((u->name = PyUnicode_DecodeUTF8(text, n, "strict")) == NULL || (node = map_add(&s->users, text, n, h)) == NULL) {
        userinfo_free(u);
        return NULL;
    }
    node->v.p = u;
    return u;
}

/* LogParser.epoch for "Mon DD, YYYY" p and "HH:MM:SS" hms; NaN for None. */
static int
call_epoch(Scanner *s, const char *p, const char *hms, double *out)
{
    PyObject *res = PyObject_CallFunction(
        s->epoch, "s#s#s#s#", p + 8, (Py_ssize_t)4, p, (Py_ssize_t)3, p + 4, (Py_ssize_t)2, hms, (Py_ssize_t)8);
    if (res == NULL)
        return -1;
    *out = res == Py_None ? Py_NAN : PyFloat_AsDouble(res);
    Py_DECREF(res);
    return PyErr_Occurred() ? -1 : 0;
}

/* Epoch of "Mon DD, YYYY HH:MM:SS" (21 bytes) in the log's zone; NaN when it is no date.
   Python is asked about :00 and :59 of each minute: 59 s apart means one UTC offset all
   minute, and a second's epoch is :00 plus its seconds. A minute with a zone change in it
   (or no valid date) is asked about second by second. */
static int
epoch_lookup(Scanner *s, const char *p, double *out)
{
    if (s->have_last && memcmp(p, s->last_second, 21) == 0) {
        *out = s->last_epoch;
        return 0;
    }
    int sec = (p[19] - '0') * 10 + (p[20] - '0');
    uint64_t h = hash_bytes(s->seed, p, 19);
    Node *node = map_get(&s->minutes, p, 19, h);
    if (node == NULL) {
        char hms[8];
        double first, last;
        memcpy(hms, p + 13, 6);
        hms[6] = hms[7] = '0';
        if (call_epoch(s, p, hms, &first) < 0)
            return -1;
        hms[6] = '5';
        hms[7] = '9';
        if (call_epoch(s, p, hms, &last) < 0)
            return -1;
        if (s->minutes.used > 4096)
            map_clear(&s->minutes);
        if ((node = map_add(&s->minutes, p, 19, h)) == NULL)
            return -1;
        node->v.d = (!Py_IS_NAN(first) && last - first == 59.0) ? first : Py_NAN;
    }
    double epoch;
    if (sec < 60 && !Py_IS_NAN(node->v.d)) {
        epoch = node->v.d + sec;
    } else {
        h = hash_bytes(s->seed, p, 21);
        Node *one = map_get(&s->seconds, p, 21, h);
        if (one == NULL) {
            if (call_epoch(s, p, p + 13, &epoch) < 0)
                return -1;
            if (s->seconds.used > 4096)
                map_clear(&s->seconds);
            if ((one = map_add(&s->seconds, p, 21, h)) == NULL)
                return -1;
            one->v.d = epoch;
        }
        epoch = one->v.d;
    }
    memcpy(s->last_second, p, 21);
    s->last_epoch = epoch;
    s->have_last = 1;
    *out = epoch;
    return 0;
}

/* ---- the ASCII line parser: plexlog._LINE, _REST, _RID, _USER, step by step ---- */

#define IS_DIGIT(c) ((unsigned char)((c) - '0') < 10)
#define IS_UPPER(c) ((unsigned char)((c) - 'A') < 26)
#define IS_LOWER(c) ((unsigned char)((c) - 'a') < 26)
#define IS_ALPHA(c) (IS_UPPER(c) || IS_LOWER(c))
#define IS_HEX(c) (IS_DIGIT(c) || (unsigned char)(((c) | 0x20) - 'a') < 6)
#define IS_WORD(c) (IS_ALPHA(c) || IS_DIGIT(c) || (c) == '_')

static const char *
find(const char *p, const char *e, const char *needle, size_t nlen)
{
    if (e - p < (Py_ssize_t)nlen)
        return NULL;
    return memmem(p, (size_t)(e - p), needle, nlen);
}

static int
starts(const char *p, const char *e, const char *lit, size_t n)
{
    return (size_t)(e - p) >= n && memcmp(p, lit, n) == 0;
}

static int
class_of(const char *p, Py_ssize_t n)
{
    for (int c = 0; c < C_UNKNOWN; c++)
        if ((Py_ssize_t)strlen(CLASS_NAMES[c]) == n && memcmp(p, CLASS_NAMES[c], (size_t)n) == 0)
            return c;
    return C_UNKNOWN;
}

/* Python's str.isspace() for ASCII: str.rstrip() strips these. */
static int
is_py_space(char c)
{
    return c == ' ' || (c >= '\t' && c <= '\r') || (c >= 0x1c && c <= 0x1f);
}

/* 1 = parsed into *r, 0 = not an access line, -1 = error. */
static int
parse_ascii(Scanner *s, const char *line, Py_ssize_t n, Rec *r)
{
    const char *p = line, *e = line + n;
    if (n < 26)
        return 0;
    if (!(IS_UPPER(p[0]) && IS_LOWER(p[1]) && IS_LOWER(p[2]) && p[3] == ' ' && IS_DIGIT(p[4]) && IS_DIGIT(p[5])
          && p[6] == ',' && p[7] == ' ' && IS_DIGIT(p[8]) && IS_DIGIT(p[9]) && IS_DIGIT(p[10]) && IS_DIGIT(p[11])
          && p[12] == ' ' && IS_DIGIT(p[13]) && IS_DIGIT(p[14]) && p[15] == ':' && IS_DIGIT(p[16]) && IS_DIGIT(p[17])
          && p[18] == ':' && IS_DIGIT(p[19]) && IS_DIGIT(p[20]) && p[21] == '.' && IS_DIGIT(p[22]) && IS_DIGIT(p[23])
          && IS_DIGIT(p[24]) && p[25] == ' '))
        return 0;
    int ms = (p[22] - '0') * 100 + (p[23] - '0') * 10 + (p[24] - '0');
    const char *q = p + 26;
    /* [thread]: 0x<hex> or decimal */
    if (q >= e || *q++ != '[')
        return 0;
    const char *t = q;
    int ok = 0;
    if (starts(t, e, "0x", 2)) {
        t += 2;
        const char *h0 = t;
        while (t < e && IS_HEX(*t))
            t++;
        ok = t > h0 && t < e && *t == ']';
    }
    if (!ok) {
        t = q;
        while (t < e && IS_DIGIT(*t))
            t++;
        ok = t > q && t < e && *t == ']';
    }
    if (!ok)
        return 0;
    q = t + 1;
    if (q >= e || *q++ != ' ')
        return 0;
    const char *l0 = q;
    while (q < e && IS_ALPHA(*q))
        q++;
    if (q == l0 || !starts(q, e, " - ", 3))
        return 0; /* the em dash form is non-ASCII: the Python parser takes it */
    q += 3;
    if (starts(q, e, "Request: ", 9)) {
        r->completed = 0;
        q += 9;
    } else if (starts(q, e, "Completed after connection close: ", 34)) {
        r->completed = 1;
        q += 34;
    } else if (starts(q, e, "Completed: ", 11)) {
        r->completed = 1;
        q += 11;
    } else {
        return 0;
    }
    if (q >= e || *q++ != '[')
        return 0;
    const char *a0 = q;
    if (q < e && *q == '[') {
        q++;
        const char *h0 = q;
        while (q < e && (IS_HEX(*q) || *q == ':' || *q == '.'))
            q++;
        if (q == h0)
            return 0;
        if (q < e && *q == '%') {
            q++;
            const char *z0 = q;
            while (q < e && (IS_WORD(*q) || *q == '.' || *q == '-'))
                q++;
            if (q == z0)
                return 0;
        }
        if (q >= e || *q++ != ']')
            return 0;
    } else {
        while (q < e && (IS_DIGIT(*q) || *q == '.'))
            q++;
        if (q == a0)
            return 0;
    }
    const char *a1 = q;
    if (q >= e || *q++ != ':')
        return 0;
    const char *d0 = q;
    long port = 0;
    while (q < e && IS_DIGIT(*q) && q - d0 < 6)
        port = port * 10 + (*q++ - '0');
    if (q == d0 || q - d0 > 5)
        return 0;
    r->cls = -1;
    if (starts(q, e, " (", 2)) {
        const char *c0 = q + 2, *c = c0;
        while (c < e && *c != '(' && *c != ')' && *c != ']')
            c++;
        if (c < e && *c == '(') {
            c++;
            while (c < e && *c != '(' && *c != ')' && *c != ']')
                c++;
            if (c >= e || *c != ')')
                return 0;
            c++;
        }
        if (c >= e || *c != ')')
            return 0;
        r->cls = class_of(c0, c - c0);
        q = c + 1;
    }
    if (!starts(q, e, "] ", 2))
        return 0;
    q += 2;
    r->status = -1;
    if (e - q >= 4 && IS_DIGIT(q[0]) && IS_DIGIT(q[1]) && IS_DIGIT(q[2]) && q[3] == ' ') {
        r->status = (q[0] - '0') * 100 + (q[1] - '0') * 10 + (q[2] - '0');
        q += 4;
    }
    const char *m0 = q;
    while (q < e && IS_UPPER(*q))
        q++;
    if (q == m0 || q >= e || *q != ' ')
        return 0;
    q++;
    if (r->completed != (r->status >= 0))
        return 0;
    if (port > 65535)
        return 0;
    /* rest = path " (N live)" tail; the path ends at the last "(N live)" */
    const char *path0 = q, *path1 = NULL, *tail = e;
    for (const char *x = e; x > q;) {
        const char *hit = NULL, *end = x;
        /* the last " live)" ending before x: memrchr finds the ')' candidates */
        while (end - q >= 6) {
            const char *c = memrchr(q + 5, ')', (size_t)(end - (q + 5)));
            if (c == NULL)
                break;
            if (c[-5] == ' ' && c[-4] == 'l' && c[-3] == 'i' && c[-2] == 'v' && c[-1] == 'e') {
                hit = c - 5;
                break;
            }
            end = c;
        }
        if (hit == NULL)
            break;
        const char *dd = hit;
        while (dd > q && IS_DIGIT(dd[-1]))
            dd--;
        if (dd < hit && dd - q >= 2 && dd[-1] == '(' && dd[-2] == ' ') {
            path1 = dd - 2;
            tail = hit + 6;
            break;
        }
        x = hit + 5; /* look for an earlier " live)" */
    }
    if (path1 == NULL) {
        path1 = e;
        while (path1 > path0 && is_py_space(path1[-1]))
            path1--;
        tail = e;
    }
    /* One pass over the tail for _RID (first " #<hex>" ending at a word boundary), _USER
       (first " Token (<no parens>)") and " Signed-in". */
    r->has_rid = 0;
    r->user = NULL;
    r->signed_in = 0;
    for (const char *x = tail; x + 1 < e; x++) {
        if (x[0] != ' ')
            continue;
        if (x[1] == '#' && !r->has_rid) {
            const char *h0 = x + 2, *h = h0;
            while (h < e && IS_HEX(*h))
                h++;
            if (h > h0 && (h == e || !IS_WORD(*h))) {
                r->has_rid = 1;
                r->rid = h0;
                r->rid_len = h - h0;
            }
        } else if (x[1] == 'T' && r->user == NULL && starts(x, e, " Token (", 8)) {
            const char *u0 = x + 8, *u = u0;
            while (u < e && *u != '(' && *u != ')')
                u++;
            if (u < e && *u == ')' && (r->user = user_lookup(s, u0, u - u0)) == NULL)
                return -1;
        } else if (x[1] == 'S' && starts(x, e, " Signed-in", 10)) {
            r->signed_in = 1;
        }
    }
    int id = ip_lookup(s, a0, a1 - a0);
    if (id == -1)
        return -1;
    if (id < 0)
        return 0;
    double epoch;
    if (epoch_lookup(s, p, &epoch) < 0)
        return -1;
    if (Py_IS_NAN(epoch))
        return 0;
    r->ip_id = id;
    r->port = (int)port;
    r->time = epoch + (double)ms / 1000.0;
    if ((r->path = path_lookup(s, path0, path1 - path0)) == NULL)
        return -1;
    return 1;
}

/* A record from plexlog.LogParser (via scan.record_tuple) for lines this parser leaves to it. */
static int
parse_fallback(Scanner *s, const char *line, Py_ssize_t n, Rec *r)
{
    PyObject *tup = PyObject_CallFunction(s->parse, "y#", line, n);
    if (tup == NULL)
        return -1;
    if (tup == Py_None) {
        Py_DECREF(tup);
        return 0;
    }
    int rc = -1;
    Py_ssize_t len;
    const char *txt;
    /* (time, completed, ip, port, class value or None, path, status or None, rid or None, user or None, signed_in) */
    if (!PyTuple_Check(tup) || PyTuple_GET_SIZE(tup) != 10) {
        PyErr_SetString(PyExc_TypeError, "parse() must return a 10-tuple or None");
        goto done;
    }
    r->time = PyFloat_AsDouble(PyTuple_GET_ITEM(tup, 0));
    r->completed = PyObject_IsTrue(PyTuple_GET_ITEM(tup, 1));
    if ((txt = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(tup, 2), &len)) == NULL)
        goto done;
    r->ip_id = ip_lookup(s, txt, len);
    if (r->ip_id == -1)
        goto done;
    if (r->ip_id < 0) {
        PyErr_SetString(PyExc_ValueError, "the parser returned an invalid address");
        goto done;
    }
    r->port = (int)PyLong_AsLong(PyTuple_GET_ITEM(tup, 3));
    PyObject *cls = PyTuple_GET_ITEM(tup, 4);
    r->cls = -1;
    if (cls != Py_None) {
        if ((txt = PyUnicode_AsUTF8AndSize(cls, &len)) == NULL)
            goto done;
        r->cls = class_of(txt, len);
    }
    if ((txt = PyUnicode_AsUTF8AndSize(PyTuple_GET_ITEM(tup, 5), &len)) == NULL)
        goto done;
    if ((r->path = path_lookup(s, txt, len)) == NULL)
        goto done;
    PyObject *status = PyTuple_GET_ITEM(tup, 6);
    r->status = status == Py_None ? -1 : (int)PyLong_AsLong(status);
    PyObject *rid = PyTuple_GET_ITEM(tup, 7);
    r->has_rid = rid != Py_None;
    if (r->has_rid && (r->rid = PyUnicode_AsUTF8AndSize(rid, &r->rid_len)) == NULL)
        goto done;
    PyObject *user = PyTuple_GET_ITEM(tup, 8);
    r->user = NULL;
    if (user != Py_None) {
        if ((txt = PyUnicode_AsUTF8AndSize(user, &len)) == NULL || (r->user = user_lookup(s, txt, len)) == NULL)
            goto done;
    }
    r->signed_in = PyObject_IsTrue(PyTuple_GET_ITEM(tup, 9));
    rc = PyErr_Occurred() ? -1 : 1;
done:
    if (rc == 1 && r->has_rid) {
        /* the rid points into the tuple: copy it before the tuple goes */
        if (s->keycap < r->rid_len + 16) {
            char *kb = realloc(s->keybuf, (size_t)r->rid_len + 64);
            if (kb == NULL) {
                Py_DECREF(tup);
                PyErr_NoMemory();
                return -1;
            }
            s->keybuf = kb;
            s->keycap = r->rid_len + 64;
        }
        memcpy(s->keybuf, r->rid, (size_t)r->rid_len);
        r->rid = s->keybuf; /* build_key copies it forward, so overlap is harmless */
    }
    Py_DECREF(tup);
    return rc;
}

/* ---- request joiner (plexlog.RequestJoiner) ---- */

/* Key (ip, rid) or (ip, ":port") as bytes in s->keybuf; returns its length, -1 on error. */
static Py_ssize_t
build_key(Scanner *s, int ip_id, const char *rid, Py_ssize_t rid_len, int port)
{
    Py_ssize_t need = 4 + (rid ? rid_len : 8);
    if (need > s->keycap) {
        char *kb = malloc((size_t)need + 64);
        if (kb == NULL) {
            PyErr_NoMemory();
            return -1;
        }
        /* rid may live in the old buffer (fallback records) */
        if (rid && rid >= s->keybuf && rid < s->keybuf + s->keycap) {
            memcpy(kb + 4, rid, (size_t)rid_len);
            rid = kb + 4;
        }
        free(s->keybuf);
        s->keybuf = kb;
        s->keycap = need + 64;
    }
    char *k = s->keybuf;
    if (rid) {
        memmove(k + 4, rid, (size_t)rid_len);
        for (Py_ssize_t i = 0; i < rid_len; i++) {
            char c = k[4 + i];
            k[4 + i] = (c >= 'A' && c <= 'Z') ? (char)(c + 32) : c;
        }
    }
    memcpy(k, &ip_id, 4);
    if (rid)
        return 4 + rid_len;
    k[4] = ':';
    return 5 + snprintf(k + 5, 7, "%d", port);
}

static int
by_port_key(char *out, int ip_id, int port)
{
    memcpy(out, &ip_id, 4);
    memcpy(out + 4, &port, 4);
    return 8;
}

/* plexlog.RequestJoiner._forget_connection: drop (ip, port) -> key if it names this key. */
static void
forget_connection(Scanner *s, int port, const char *key, Py_ssize_t klen)
{
    char pk[8];
    int ip_id;
    memcpy(&ip_id, key, 4);
    int pklen = by_port_key(pk, ip_id, port);
    size_t i = map_slot(&s->by_port, pk, pklen, hash_bytes(s->seed, pk, pklen));
    Node *bn = s->by_port.slots[i].node;
    if (bn != NULL && bn->v.i == klen && memcmp(PAYLOAD(bn), key, (size_t)klen) == 0)
        map_remove_at(&s->by_port, i);
}

/* plexlog.RequestJoiner._take: remove the pending request under *key* into *out*; 0 if none. */
static int
take(Scanner *s, const char *key, Py_ssize_t klen, Pending *out)
{
    size_t i = map_slot(&s->pending, key, klen, hash_bytes(s->seed, key, klen));
    Node *n = s->pending.slots[i].node;
    if (n == NULL)
        return 0;
    *out = *(Pending *)PAYLOAD(n);
    forget_connection(s, out->port, key, klen);
    map_remove_at(&s->pending, i);
    return 1;
}

/* ---- detector (detect.Detector) ---- */

typedef struct {
    double time;
    IpRec *ip;
    int cls, status, signed_in;
    PathInfo *path;
    UserInfo *user;
} Event;

static int
src_cmp(const void *a, const void *b)
{
    const Node *x = *(Node *const *)a, *y = *(Node *const *)b;
    double lx = ((Src *)x->v.p)->last_seen, ly = ((Src *)y->v.p)->last_seen;
    if (lx != ly)
        return lx > ly ? -1 : 1;
    /* stable: Python's sorted(reverse=True) keeps equal keys in their order */
    return x->hash < y->hash ? -1 : (x->hash > y->hash);
}

/* Forget the quietest sources, keeping the most recent half in Python's order. */
static int
expire_sources(Scanner *s)
{
    size_t count = s->sources.used, i = 0;
    Node **all = malloc((count ? count : 1) * sizeof(Node *));
    if (all == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    /* the hash field doubles as the original position while sorting */
    for (Node *n = s->sources.head; n != NULL; n = n->next, i++) {
        all[i] = n;
        n->hash = i;
    }
    qsort(all, count, sizeof(Node *), src_cmp);
    Map fresh;
    if (map_init(&fresh, src_free) < 0) {
        free(all);
        return -1;
    }
    size_t keep = (size_t)(s->max_sources / 2);
    for (i = 0; i < count; i++) {
        Node *n = all[i];
        if (i < keep) {
            Node *m = map_add(&fresh, n->key, n->klen, hash_bytes(s->seed, n->key, n->klen));
            if (m == NULL) {
                free(all);
                map_free(&fresh);
                return -1;
            }
            m->v.p = n->v.p;
            n->v.p = NULL;
        }
    }
    free(all);
    map_free(&s->sources); /* frees the Src of the forgotten ones */
    s->sources = fresh;
    s->src_gen++;
    return 0;
}

static Src *
get_src(Scanner *s, IpRec *ip)
{
    if (ip->src != NULL && ip->src_gen == s->src_gen)
        return ip->src;
    Py_ssize_t kn;
    const char *key = PyUnicode_AsUTF8AndSize(ip->skey, &kn);
    if (key == NULL)
        return NULL;
    uint64_t h = hash_bytes(s->seed, key, kn);
    Node *n = map_get(&s->sources, key, kn, h);
    if (n == NULL) {
        if ((Py_ssize_t)s->sources.used >= s->max_sources) {
            if (expire_sources(s) < 0)
                return NULL;
        }
        Src *src = calloc(1, sizeof(Src));
        if (src == NULL) {
            PyErr_NoMemory();
            return NULL;
        }
        if ((n = map_add(&s->sources, key, kn, h)) == NULL) {
            free(src);
            return NULL;
        }
        n->v.p = src;
    }
    ip->src = n->v.p;
    ip->src_gen = s->src_gen;
    return ip->src;
}

/* detect.Detector._alert: one alert per kind (and user) per quiet period. */
static int
raise_alert(Scanner *s, Src *src, int kind, Event *ev, Py_ssize_t count, long score, PyObject *user, PyObject *extra)
{
    if (src->quiet == NULL && (src->quiet = PyDict_New()) == NULL)
        return -1;
    PyObject *qkey;
    if (user == NULL)
        qkey = Py_NewRef(s->quiet_plain[kind]);
    else if ((qkey = PyUnicode_Concat(s->quiet_plain[kind], user)) == NULL)
        return -1;
    PyObject *until = PyDict_GetItemWithError(src->quiet, qkey);
    if (until == NULL && PyErr_Occurred()) {
        Py_DECREF(qkey);
        return -1;
    }
    /* Python compares with quiet_until.get(key, 0.0): a missing key means 0.0, not "never" */
    if (ev->time < (until != NULL ? PyFloat_AS_DOUBLE(until) : 0.0)) {
        Py_DECREF(qkey);
        return 0;
    }
    PyObject *next = PyFloat_FromDouble(ev->time + s->window);
    int rc = next == NULL ? -1 : PyDict_SetItem(src->quiet, qkey, next);
    Py_XDECREF(next);
    Py_DECREF(qkey);
    if (rc < 0)
        return -1;
    double first = ev->time;
    if (kind == K_BURST && src->failures.len)
        first = src->failures.v[src->failures.head];
    else if (kind == K_PROBE && src->probes.len)
        first = src->probes.v[src->probes.head];
    else if (kind == K_FLOOD && src->minute.len)
        first = src->minute.v[src->minute.head];
    PyObject *samples = src->samples ? PyList_GetSlice(src->samples, 0, PY_SSIZE_T_MAX) : PyList_New(0);
    if (samples == NULL)
        return -1;
    PyObject *res = PyObject_CallFunction(
        s->alert, "OOddnlOOO", s->kind_str[kind], ev->ip->ip, ev->time, first, count, score, samples,
        s->class_str[ev->cls], extra ? extra : Py_None);
    Py_DECREF(samples);
    if (res == NULL)
        return -1;
    Py_DECREF(res);
    return 0;
}

static int
remember(Scanner *s, Src *src, PathInfo *path)
{
    if (src->samples == NULL && (src->samples = PyList_New(0)) == NULL)
        return -1;
    if (PyList_GET_SIZE(src->samples) >= 5)
        return 0;
    if (path->sample == NULL && (path->sample = PyObject_CallOneArg(s->sanitise, path->path)) == NULL)
        return -1;
    int has = PySequence_Contains(src->samples, path->sample);
    if (has < 0)
        return -1;
    return has ? 0 : PyList_Append(src->samples, path->sample);
}

static int
simple_alert(Scanner *s, Src *src, int kind, Event *ev, Py_ssize_t count, long score)
{
    return raise_alert(s, src, kind, ev, count, score, NULL, NULL);
}

static int
check_location(Scanner *s, Event *ev)
{
    IpRec *ip = ev->ip;
    if (!ip->is_public)
        return 0;
    UserInfo *u = ev->user;
    if (u->nets == NULL && (u->nets = PySet_New(NULL)) == NULL)
        return -1;
    int known = PySet_Contains(u->nets, ip->unet);
    if (known)
        return known < 0 ? -1 : 0;
    int first = PySet_GET_SIZE(u->nets) == 0;
    if (PySet_Add(u->nets, ip->unet) < 0)
        return -1;
    if (first)
        return 0;
    Src *src = get_src(s, ip);
    if (src == NULL)
        return -1;
    PyObject *extra = Py_BuildValue("{sOsO}", "user", u->name, "network", ip->unet);
    if (extra == NULL)
        return -1;
    int rc = raise_alert(s, src, K_NEW_LOCATION, ev, 1, 30, u->name, extra);
    Py_DECREF(extra);
    return rc;
}

static int
detect(Scanner *s, Event *ev)
{
    IpRec *ip = ev->ip;
    PathInfo *path = ev->path;
    Src *src;
    double now = ev->time;
    if (ev->signed_in && (path->flags & F_LOG_INJECTION) && ip->is_public) {
        if ((src = get_src(s, ip)) == NULL)
            return -1;
        PyObject *user = ev->user ? ev->user->name : s->empty;
        PyObject *extra = Py_BuildValue("{sO}", "user", user);
        int rc = extra == NULL ? -1 : raise_alert(s, src, K_LOG_INJECTION, ev, 1, 90, user, extra);
        Py_XDECREF(extra);
        if (rc < 0)
            return -1;
    }
    if (ev->cls == C_LOOPBACK || ev->cls == C_SUBNET || ev->cls == C_ALLOWED_SUBNET)
        return 0;
    if (ev->cls == C_ALLOWED_WAN && ip->is_public) {
        if ((src = get_src(s, ip)) == NULL)
            return -1;
        PyObject *extra = PyDict_New();
        int rc = extra == NULL ? -1 : raise_alert(s, src, K_AUTH_BYPASS, ev, 1, 90, NULL, extra);
        Py_XDECREF(extra);
        if (rc < 0)
            return -1;
    }
    if ((src = get_src(s, ip)) == NULL)
        return -1;
    src->last_seen = now;
    if (ev->signed_in && ev->status < 400) {
        src->trusted_until = now + s->trust;
        if (ev->user != NULL && PyUnicode_GET_LENGTH(ev->user->name) > 0 && check_location(s, ev) < 0)
            return -1;
    }
    /* flood: requests in the last minute */
    if (win_push(&src->minute, now) < 0)
        return -1;
    win_trim(&src->minute, now - 60);
    double limit = s->flood;
    if (now < src->trusted_until)
        limit *= s->factor;
    if ((double)src->minute.len > limit) {
        PyObject *extra = Py_BuildValue("{sn}", "per_minute", src->minute.len);
        int rc = extra == NULL ? -1 : raise_alert(s, src, K_FLOOD, ev, src->minute.len, 60, NULL, extra);
        Py_XDECREF(extra);
        if (rc < 0)
            return -1;
    }
    if (path->flags & F_PROBE) {
        if (win_push(&src->probes, now) < 0)
            return -1;
        win_trim(&src->probes, now - s->window);
        if (remember(s, src, path) < 0)
            return -1;
        Py_ssize_t c = src->probes.len;
        if (c >= s->probe_threshold && simple_alert(s, src, K_PROBE, ev, c, c >= 4 ? 100 : 60 + 10 * (long)c) < 0)
            return -1;
    } else if (ev->status == 404 && !ev->signed_in) {
        /* CrowdSec http-probing style: distinct missing paths within a short leak */
        if (src->misses == NULL && (src->misses = PyDict_New()) == NULL)
            return -1;
        double horizon = now - s->scan_window;
        PyObject *old = PyList_New(0), *k, *v;
        Py_ssize_t pos = 0;
        if (old == NULL)
            return -1;
        while (PyDict_Next(src->misses, &pos, &k, &v)) {
            if (PyFloat_AS_DOUBLE(v) < horizon && PyList_Append(old, k) < 0) {
                Py_DECREF(old);
                return -1;
            }
        }
        for (Py_ssize_t i = 0; i < PyList_GET_SIZE(old); i++) {
            if (PyDict_DelItem(src->misses, PyList_GET_ITEM(old, i)) < 0) {
                Py_DECREF(old);
                return -1;
            }
        }
        Py_DECREF(old);
        if (PyDict_GET_SIZE(src->misses) < 1000) {
            PyObject *t = PyFloat_FromDouble(now);
            int rc = t == NULL ? -1 : PyDict_SetItem(src->misses, path->path, t);
            Py_XDECREF(t);
            if (rc < 0)
                return -1;
        }
        if (remember(s, src, path) < 0)
            return -1;
        Py_ssize_t c = PyDict_GET_SIZE(src->misses);
        if (c >= s->scan_paths && simple_alert(s, src, K_SCAN, ev, c, 70) < 0)
            return -1;
    }
    if ((ev->status == 401 || ev->status == 403) && !ev->signed_in && ev->cls != C_UNKNOWN) {
        if (path->flags & F_BENIGN)
            return 0;
        ip->failed++;
        if (win_push(&src->failures, now) < 0)
            return -1;
        win_trim(&src->failures, now - s->window);
        if (remember(s, src, path) < 0)
            return -1;
        double needed = s->threshold;
        if (now < src->trusted_until)
            needed *= s->factor;
        Py_ssize_t c = src->failures.len;
        if ((double)c >= needed && simple_alert(s, src, K_BURST, ev, c, c >= 5 ? 100 : 50 + 10 * (long)c) < 0)
            return -1;
    }
    return 0;
}

/* The record as plexlog.LogRecord fields: (time, completed, ip, port, class, path, status, rid, user, signed_in). */
static int
trace_record(Scanner *s, Rec *r)
{
    PyObject *rid = Py_NewRef(Py_None);
    if (r->has_rid) {
        Py_DECREF(rid);
        if ((rid = PyUnicode_FromStringAndSize(r->rid, r->rid_len)) == NULL)
            return -1;
        PyObject *low = PyObject_CallMethod(rid, "lower", NULL);
        Py_DECREF(rid);
        if ((rid = low) == NULL)
            return -1;
    }
    PyObject *status = r->status >= 0 ? PyLong_FromLong(r->status) : Py_NewRef(Py_None);
    if (status == NULL) {
        Py_DECREF(rid);
        return -1;
    }
    PyObject *res = PyObject_CallFunction(
        s->trace, "s(dOOiOONOOO)", "record", r->time, r->completed ? Py_True : Py_False, s->ips[r->ip_id].ip, r->port,
        r->cls >= 0 ? s->class_str[r->cls] : Py_None, r->path->path, status, rid, r->user ? r->user->name : Py_None,
        r->signed_in ? Py_True : Py_False);
    Py_DECREF(rid);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* The joined event as plexlog.HttpEvent fields the detector reads. */
static int
trace_event(Scanner *s, Event *ev, int suspect)
{
    PyObject *res = PyObject_CallFunction(
        s->trace, "s(OOiOOO)", "event", ev->ip->ip, s->class_str[ev->cls], ev->status, ev->signed_in ? Py_True : Py_False,
        ev->user ? ev->user->name : Py_None, suspect ? Py_True : Py_False);
    Py_XDECREF(res);
    return res == NULL ? -1 : 0;
}

/* ---- one record through the joiner and, when it completes a request, the detector ---- */

static int
handle(Scanner *s, Rec *r)
{
    Py_ssize_t klen = build_key(s, r->ip_id, r->has_rid ? r->rid : NULL, r->rid_len, r->port);
    if (klen < 0)
        return -1;
    char pk[8];
    int pklen = by_port_key(pk, r->ip_id, r->port);
    if (!r->completed) {
        if (r->path->flags & F_LOG_WRITE) {
            s->q_until = r->time + 2.0;
            s->q_owner = r->ip_id;
        }
        uint64_t h = hash_bytes(s->seed, s->keybuf, klen);
        Node *n = map_get(&s->pending, s->keybuf, klen, h);
        if (n != NULL)
            forget_connection(s, ((Pending *)PAYLOAD(n))->port, s->keybuf, klen);
        else if ((n = map_add_sized(&s->pending, s->keybuf, klen, h, sizeof(Pending))) == NULL)
            return -1;
        Pending *p = PAYLOAD(n);
        p->port = r->port;
        p->cls = r->cls;
        p->signed_in = r->signed_in;
        p->user = r->user;
        /* by_port: (ip, port) -> the pending key, stored after the node's own key */
        uint64_t ph = hash_bytes(s->seed, pk, pklen);
        Node *bn = map_get(&s->by_port, pk, pklen, ph);
        if (bn != NULL && bn->v.i != klen) {
            map_remove(&s->by_port, bn);
            bn = NULL;
        }
        if (bn == NULL && (bn = map_add_sized(&s->by_port, pk, pklen, ph, (size_t)klen)) == NULL)
            return -1;
        bn->v.i = klen;
        memcpy(PAYLOAD(bn), s->keybuf, (size_t)klen);
        if ((Py_ssize_t)s->pending.used > s->capacity) {
            Node *oldest = s->pending.head;
            forget_connection(s, ((Pending *)PAYLOAD(oldest))->port, oldest->key, oldest->klen);
            map_remove(&s->pending, oldest);
        }
        return 0;
    }
    Pending req;
    int found = take(s, s->keybuf, klen, &req);
    if (!found && r->has_rid) {
        if ((klen = build_key(s, r->ip_id, NULL, 0, r->port)) < 0)
            return -1;
        found = take(s, s->keybuf, klen, &req);
    }
    if (!found && !r->has_rid) {
        Node *bn = map_get(&s->by_port, pk, pklen, hash_bytes(s->seed, pk, pklen));
        if (bn != NULL) {
            /* take() drops this very entry: work on a copy of the key it holds */
            Py_ssize_t n = bn->v.i;
            if (n > s->keycap) {
                char *kb = realloc(s->keybuf, (size_t)n + 64);
                if (kb == NULL) {
                    PyErr_NoMemory();
                    return -1;
                }
                s->keybuf = kb;
                s->keycap = n + 64;
            }
            memcpy(s->keybuf, PAYLOAD(bn), (size_t)n);
            found = take(s, s->keybuf, n, &req);
        }
    }
    if (found && req.port != r->port)
        found = 0;
    Event ev = {
        .time = r->time,
        .ip = &s->ips[r->ip_id],
        .cls = (found && req.cls >= 0) ? req.cls : C_UNKNOWN,
        .status = r->status,
        .signed_in = found ? req.signed_in : 0,
        .path = r->path,
        .user = found ? req.user : NULL,
    };
    int suspect = r->time <= s->q_until && r->ip_id != s->q_owner;
    if (s->trace != Py_None && trace_event(s, &ev, suspect) < 0)
        return -1;
    ev.ip->requests++;
    if (r->path->flags & F_PROBE)
        ev.ip->probes++;
    if (suspect)
        return 0; /* possibly written by a /log caller: evidence against nobody */
    return detect(s, &ev);
}

static int
has_high_byte(const char *p, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8) {
        uint64_t w;
        memcpy(&w, p + i, 8);
        if (w & 0x8080808080808080ull)
            return 1;
    }
    for (; i < n; i++)
        if ((unsigned char)p[i] & 0x80)
            return 1;
    return 0;
}

static int
process_line(Scanner *s, const char *p, Py_ssize_t n)
{
    while (n > 0 && (p[n - 1] == '\r' || p[n - 1] == '\n'))
        n--;
    s->lines++;
    Rec r;
    int ok;
    if (has_high_byte(p, n)) {
        ok = parse_fallback(s, p, n, &r);
    } else {
        ok = parse_ascii(s, p, n, &r);
        /* a line refused here that might still be an access line: let the reference decide */
        if (ok == 0 && (find(p, p + n, "Request: ", 9) || find(p, p + n, "Completed", 9)))
            ok = parse_fallback(s, p, n, &r);
    }
    if (ok <= 0)
        return ok;
    s->parsed++;
    if (s->trace != Py_None && trace_record(s, &r) < 0)
        return -1;
    return handle(s, &r);
}

/* ---- Python interface ---- */

static PyObject *
Scanner_feed(Scanner *s, PyObject *args)
{
    Py_buffer buf;
    int final = 0;
    if (s->keybuf == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "the Scanner was not initialised");
        return NULL;
    }
    if (!PyArg_ParseTuple(args, "y*|p", &buf, &final))
        return NULL;
    const char *p = buf.buf, *e = p + buf.len, *line = p;
    while (line < e) {
        const char *nl = memchr(line, '\n', (size_t)(e - line));
        if (nl == NULL) {
            if (!final)
                break;
            nl = e;
        }
        if (process_line(s, line, nl - line) < 0) {
            PyBuffer_Release(&buf);
            return NULL;
        }
        line = nl < e ? nl + 1 : e;
    }
    Py_ssize_t used = line - p;
    PyBuffer_Release(&buf);
    return PyLong_FromSsize_t(used);
}

static PyObject *
Scanner_result(Scanner *s, PyObject *Py_UNUSED(ignored))
{
    PyObject *rows = PyList_New(0);
    if (rows == NULL)
        return NULL;
    for (Py_ssize_t i = 0; i < s->n_ips; i++) {
        IpRec *r = &s->ips[i];
        if (r->requests == 0)
            continue;
        PyObject *row = Py_BuildValue("(Onnn)", r->ip, r->requests, r->failed, r->probes);
        if (row == NULL || PyList_Append(rows, row) < 0) {
            Py_XDECREF(row);
            Py_DECREF(rows);
            return NULL;
        }
        Py_DECREF(row);
    }
    PyObject *res = Py_BuildValue("(LLO)", s->lines, s->parsed, rows);
    Py_DECREF(rows);
    return res;
}

static void
Scanner_clear_state(Scanner *s)
{
    map_free(&s->addrs);
    map_free(&s->canon);
    map_free(&s->paths);
    map_free(&s->users);
    map_free(&s->pending);
    map_free(&s->by_port);
    map_free(&s->minutes);
    map_free(&s->seconds);
    map_free(&s->sources);
    for (Py_ssize_t i = 0; i < s->n_ips; i++) {
        Py_XDECREF(s->ips[i].ip);
        Py_XDECREF(s->ips[i].skey);
        Py_XDECREF(s->ips[i].unet);
    }
    free(s->ips);
    s->ips = NULL;
    s->n_ips = s->cap_ips = 0;
    free(s->keybuf);
    s->keybuf = NULL;
}

static void
Scanner_dealloc(Scanner *s)
{
    Scanner_clear_state(s);
    Py_XDECREF(s->facts);
    Py_XDECREF(s->classify);
    Py_XDECREF(s->sanitise);
    Py_XDECREF(s->epoch);
    Py_XDECREF(s->parse);
    Py_XDECREF(s->alert);
    Py_XDECREF(s->trace);
    for (int i = 0; i < N_CLASSES; i++)
        Py_XDECREF(s->class_str[i]);
    for (int i = 0; i < N_KINDS; i++) {
        Py_XDECREF(s->kind_str[i]);
        Py_XDECREF(s->quiet_plain[i]);
    }
    Py_XDECREF(s->empty);
    Py_TYPE(s)->tp_free((PyObject *)s);
}

static int
Scanner_init(Scanner *s, PyObject *args, PyObject *kw)
{
    static char *names[] = {"facts", "classify", "sanitise", "epoch", "parse", "alert", "window", "threshold",
                            "probe_threshold", "scan_paths", "scan_window", "flood", "trust", "factor",
                            "max_sources", "capacity", "seed", "trace", NULL};
    if (s->keybuf != NULL) {
        PyErr_SetString(PyExc_RuntimeError, "a Scanner is initialised once");
        return -1;
    }
    /* Parsed into locals first: a failure must leave no borrowed reference for dealloc. */
    unsigned long long seed = 0;
    PyObject *facts, *classify, *sanitise, *epoch, *parse, *alert, *trace = Py_None;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OOOOOOddnnddddnnK|O", names, &facts, &classify, &sanitise, &epoch,
                                     &parse, &alert, &s->window, &s->threshold, &s->probe_threshold, &s->scan_paths,
                                     &s->scan_window, &s->flood, &s->trust, &s->factor, &s->max_sources, &s->capacity,
                                     &seed, &trace))
        return -1;
    if (s->max_sources < 2 || s->capacity < 1) {
        PyErr_SetString(PyExc_ValueError, "max_sources must be >= 2 and capacity >= 1");
        return -1;
    }
    s->facts = Py_NewRef(facts);
    s->classify = Py_NewRef(classify);
    s->sanitise = Py_NewRef(sanitise);
    s->epoch = Py_NewRef(epoch);
    s->parse = Py_NewRef(parse);
    s->alert = Py_NewRef(alert);
    s->trace = Py_NewRef(trace);
    s->seed = seed;
    if (map_init(&s->addrs, NULL) < 0 || map_init(&s->canon, NULL) < 0 || map_init(&s->paths, pathinfo_free) < 0
        || map_init(&s->users, userinfo_free) < 0 || map_init(&s->pending, NULL) < 0
        || map_init(&s->by_port, NULL) < 0 || map_init(&s->minutes, NULL) < 0
        || map_init(&s->seconds, NULL) < 0
        || map_init(&s->sources, src_free) < 0)
        return -1;
    s->q_owner = -1;
    s->keycap = 256;
    if ((s->keybuf = malloc((size_t)s->keycap)) == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if ((s->empty = PyUnicode_FromStringAndSize("", 0)) == NULL)
        return -1;
    for (int i = 0; i < N_CLASSES; i++)
        if ((s->class_str[i] = PyUnicode_InternFromString(CLASS_NAMES[i])) == NULL)
            return -1;
    for (int i = 0; i < N_KINDS; i++) {
        if ((s->kind_str[i] = PyUnicode_InternFromString(KIND_NAMES[i])) == NULL
            || (s->quiet_plain[i] = PyUnicode_FromFormat("%s:", KIND_NAMES[i])) == NULL)
            return -1;
    }
    return 0;
}

static PyMethodDef Scanner_methods[] = {
    {"feed", (PyCFunction)Scanner_feed, METH_VARARGS,
     "feed(data, final=False) -> bytes used: judge the complete lines of data (all of it when final)."},
    {"result", (PyCFunction)Scanner_result, METH_NOARGS,
     "result() -> (lines, parsed, [(ip, requests, failed_auth, probes)])."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ScannerType = {
    PyVarObject_HEAD_INIT(NULL, 0).tp_name = "plex_security_helper.logwatch._fastscan.Scanner",
    .tp_basicsize = sizeof(Scanner),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The scan pipeline over raw log bytes (see scan.py for the callbacks).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Scanner_init,
    .tp_dealloc = (destructor)Scanner_dealloc,
    .tp_methods = Scanner_methods,
};

static struct PyModuleDef fastscan_module = {
    PyModuleDef_HEAD_INIT, "_fastscan", "Compiled twin of the scan pipeline.", -1, NULL, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC
PyInit__fastscan(void)
{
    if (PyType_Ready(&ScannerType) < 0)
        return NULL;
    PyObject *m = PyModule_Create(&fastscan_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddObjectRef(m, "Scanner", (PyObject *)&ScannerType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
