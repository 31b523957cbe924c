/* The hashing featurizer's hot loops in C (issue 17): the optional compiled twin of
 * `HashingFeaturizer.transform_pure` (features.py / features_short.py), bit for bit.
 *
 * `Kernel(...)` holds the featurizer's tables; `Kernel.row(text, lower, tail_len)` returns
 * (indices int64, values float32, dense float32) as three bytearrays, or None when the text holds
 * a lone surrogate (the pure path raises there). `text` is the clipped text, `lower` its lower
 * case (cut to max_chars), `tail_len` the length of `last_block(lower)` and `question` whether
 * that block holds a `?`.
 *
 * Integer work (word and character n-gram hashes mod 2**64, buckets, the distinct count, marker
 * and substring counts) is exact. Float work repeats numpy's operations in the same types and
 * order: tf read from the caller's float32 table of 1 + log(count), times idf (float32), squared
 * (float32) and summed per namespace in float64 in sorted key order (np.bincount), sqrt, max with
 * 1e-12, cast to float32, divided (float32); the dense values in float64 by the same libm
 * functions CPython's math module calls, cast to float32, standardised in float32.
 * Built by hatch_build.py with -ffp-contract=off (no fused multiply-adds). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#define BASE 0x100000001B3ULL
#define MIX 0x9E3779B97F4A7C15ULL
#define BIGRAM 0x5BD1E995ULL
#define SALT_MUL 0x632BE59BD9B4E019ULL
#define N_NS 3
#define N_DENSE 25
#define N_MARKER_FEATURES 6
#define MAX_SIZES 8
#define MAX_SUBSTR 64
#define MAX_SUBSTR_LEN 16

/* dense slots filled by substring counts (the caller says which marker goes to which slot) */
typedef struct {
    Py_UCS4 s[MAX_SUBSTR_LEN];
    int len;
    int slot;
} Substr;

typedef struct {
    int n;
    Substr subs[MAX_SUBSTR];
    uint64_t first[128];   /* ASCII first character -> bit set of the markers starting with it */
} SubstrGroup;

#define MARKER_SLOTS 256

typedef struct {
    PyObject_HEAD
    int bits;
    int n_sizes;
    int sizes[MAX_SIZES];
    uint64_t salts[N_NS];
    Py_ssize_t n_markers;
    uint64_t *marker_hashes; /* sorted */
    int *marker_feature;
    uint64_t slot_hash[MARKER_SLOTS];   /* open addressing over marker_hashes */
    int slot_feature[MARKER_SLOTS];     /* -1: empty */
    Py_ssize_t n_log_tf;
    float *log_tf;
    float *idf; /* NULL: unfitted */
    float *mean; /* NULL: no standardisation */
    float *std;
    Py_ssize_t max_chars, tail_chars;   /* features.py's max_chars and _TAIL_BLOCK_CHARS */
    SubstrGroup lower_sub; /* counted in the lower-cased text */
    SubstrGroup text_sub;  /* counted in the text */
} Kernel;

static const char WORD_ASCII[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1, ['_'] = 1,
    ['A'] = 1, ['B'] = 1, ['C'] = 1, ['D'] = 1, ['E'] = 1, ['F'] = 1, ['G'] = 1, ['H'] = 1,
    ['I'] = 1, ['J'] = 1, ['K'] = 1, ['L'] = 1, ['M'] = 1, ['N'] = 1, ['O'] = 1, ['P'] = 1,
    ['Q'] = 1, ['R'] = 1, ['S'] = 1, ['T'] = 1, ['U'] = 1, ['V'] = 1, ['W'] = 1, ['X'] = 1,
    ['Y'] = 1, ['Z'] = 1,
    ['a'] = 1, ['b'] = 1, ['c'] = 1, ['d'] = 1, ['e'] = 1, ['f'] = 1, ['g'] = 1, ['h'] = 1,
    ['i'] = 1, ['j'] = 1, ['k'] = 1, ['l'] = 1, ['m'] = 1, ['n'] = 1, ['o'] = 1, ['p'] = 1,
    ['q'] = 1, ['r'] = 1, ['s'] = 1, ['t'] = 1, ['u'] = 1, ['v'] = 1, ['w'] = 1, ['x'] = 1,
    ['y'] = 1, ['z'] = 1,
};

/* ASCII -> 0 other, 1 digit, 2 upper-case letter, 3 code/math symbol (features._SYMBOLS) */
static const char CLASS_ASCII[128] = {
    ['0'] = 1, ['1'] = 1, ['2'] = 1, ['3'] = 1, ['4'] = 1, ['5'] = 1, ['6'] = 1, ['7'] = 1,
    ['8'] = 1, ['9'] = 1,
    ['A'] = 2, ['B'] = 2, ['C'] = 2, ['D'] = 2, ['E'] = 2, ['F'] = 2, ['G'] = 2, ['H'] = 2,
    ['I'] = 2, ['J'] = 2, ['K'] = 2, ['L'] = 2, ['M'] = 2, ['N'] = 2, ['O'] = 2, ['P'] = 2,
    ['Q'] = 2, ['R'] = 2, ['S'] = 2, ['T'] = 2, ['U'] = 2, ['V'] = 2, ['W'] = 2, ['X'] = 2,
    ['Y'] = 2, ['Z'] = 2,
    ['{'] = 3, ['}'] = 3, ['('] = 3, [')'] = 3, ['['] = 3, [']'] = 3, ['='] = 3, [';'] = 3,
    ['<'] = 3, ['>'] = 3, ['*'] = 3, ['/'] = 3, ['+'] = 3,
};

static inline int is_word(Py_UCS4 c) { return c >= 128 || WORD_ASCII[c]; }
static inline int is_digit(Py_UCS4 c) { return c >= '0' && c <= '9'; }

/* ------------------------------------------------------------------------------- construction */
static int copy_floats(PyObject *obj, float **out, Py_ssize_t want, const char *what) {
    *out = NULL;
    if (obj == Py_None) return 0;
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(float);
    if (view.len % (Py_ssize_t)sizeof(float) || (want >= 0 && n != want)) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: wrong size", what);
        return -1;
    }
    *out = PyMem_Malloc(view.len ? (size_t)view.len : 1);
    if (*out == NULL) { PyBuffer_Release(&view); PyErr_NoMemory(); return -1; }
    memcpy(*out, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return 0;
}

static int read_substrs(PyObject *list, SubstrGroup *g) {
    Substr *out = g->subs;
    PyObject *seq = PySequence_Fast(list, "markers: a sequence of (str, slot)");
    if (seq == NULL) return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if (n > MAX_SUBSTR) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many markers"); return -1; }
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *s;
        int slot;
        if (!PyArg_ParseTuple(PySequence_Fast_GET_ITEM(seq, i), "Ui", &s, &slot)) { Py_DECREF(seq); return -1; }
        Py_ssize_t len = PyUnicode_GET_LENGTH(s);
        if (len < 1 || len > MAX_SUBSTR_LEN || slot < 0 || slot >= N_DENSE) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a marker must have 1..16 characters and a dense slot");
            return -1;
        }
        for (Py_ssize_t j = 0; j < len; j++) out[i].s[j] = PyUnicode_READ_CHAR(s, j);
        out[i].len = (int)len;
        out[i].slot = slot;
        if (out[i].s[0] >= 128) {
            Py_DECREF(seq);
            PyErr_SetString(PyExc_ValueError, "a marker must start with an ASCII character");
            return -1;
        }
        g->first[out[i].s[0]] |= (uint64_t)1 << i;
    }
    g->n = (int)n;
    Py_DECREF(seq);
    return 0;
}

static void Kernel_dealloc(Kernel *self) {
    PyMem_Free(self->marker_hashes);
    PyMem_Free(self->marker_feature);
    PyMem_Free(self->log_tf);
    PyMem_Free(self->idf);
    PyMem_Free(self->mean);
    PyMem_Free(self->std);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Kernel_init(Kernel *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"bits", "char_sizes", "salts", "marker_hashes", "marker_features", "log_tf",
                             "idf", "dense_mean", "dense_std", "lower_markers", "text_markers", "max_chars",
                             "tail_chars", NULL};
    int bits;
    PyObject *sizes, *salts, *mh, *mf, *log_tf, *idf, *mean, *std, *lower_sub, *text_sub;
    if (self->log_tf != NULL) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "iOOOOOOOOOOnn", kwlist, &bits, &sizes, &salts, &mh, &mf,
                                     &log_tf, &idf, &mean, &std, &lower_sub, &text_sub, &self->max_chars,
                                     &self->tail_chars))
        return -1;
    if (self->max_chars < 1 || self->tail_chars < 1) {
        PyErr_SetString(PyExc_ValueError, "max_chars and tail_chars must be positive");
        return -1;
    }
    if (bits < 1 || bits > 28) { PyErr_SetString(PyExc_ValueError, "bits out of range"); return -1; }
    self->bits = bits;
    PyObject *seq = PySequence_Fast(sizes, "char_sizes: a sequence of ints");
    if (seq == NULL) return -1;
    Py_ssize_t ns = PySequence_Fast_GET_SIZE(seq);
    if (ns > MAX_SIZES) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "too many char sizes"); return -1; }
    for (Py_ssize_t i = 0; i < ns; i++) {
        long k = PyLong_AsLong(PySequence_Fast_GET_ITEM(seq, i));
        if (k < 1 || k > 64) {
            Py_DECREF(seq);
            if (!PyErr_Occurred()) PyErr_SetString(PyExc_ValueError, "char size out of range");
            return -1;
        }
        self->sizes[i] = (int)k;
    }
    self->n_sizes = (int)ns;
    Py_DECREF(seq);
    seq = PySequence_Fast(salts, "salts: three ints");
    if (seq == NULL) return -1;
    if (PySequence_Fast_GET_SIZE(seq) != N_NS) { Py_DECREF(seq); PyErr_SetString(PyExc_ValueError, "three salts"); return -1; }
    for (int i = 0; i < N_NS; i++) {
        self->salts[i] = PyLong_AsUnsignedLongLong(PySequence_Fast_GET_ITEM(seq, i));
        if (PyErr_Occurred()) { Py_DECREF(seq); return -1; }
    }
    Py_DECREF(seq);
    Py_buffer hv, fv;
    if (PyObject_GetBuffer(mh, &hv, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (PyObject_GetBuffer(mf, &fv, PyBUF_C_CONTIGUOUS) < 0) { PyBuffer_Release(&hv); return -1; }
    Py_ssize_t nm = hv.len / 8;
    if (hv.len % 8 || fv.len != nm * 8) {
        PyBuffer_Release(&hv); PyBuffer_Release(&fv);
        PyErr_SetString(PyExc_ValueError, "marker tables: uint64 hashes and int64 features, one each");
        return -1;
    }
    self->marker_hashes = PyMem_Malloc((size_t)(nm ? nm : 1) * sizeof(uint64_t));
    self->marker_feature = PyMem_Malloc((size_t)(nm ? nm : 1) * sizeof(int));
    if (!self->marker_hashes || !self->marker_feature) {
        PyBuffer_Release(&hv); PyBuffer_Release(&fv); PyErr_NoMemory(); return -1;
    }
    memcpy(self->marker_hashes, hv.buf, (size_t)hv.len);
    for (Py_ssize_t i = 0; i < nm; i++) {
        int64_t f = ((const int64_t *)fv.buf)[i];
        if (f < 0 || f >= N_MARKER_FEATURES || (i && self->marker_hashes[i] <= self->marker_hashes[i - 1])) {
            PyBuffer_Release(&hv); PyBuffer_Release(&fv);
            PyErr_SetString(PyExc_ValueError, "marker tables: hashes sorted and distinct, features 0..5");
            return -1;
        }
        self->marker_feature[i] = (int)f;
    }
    self->n_markers = nm;
    if (nm > MARKER_SLOTS / 2) {
        PyBuffer_Release(&hv); PyBuffer_Release(&fv);
        PyErr_SetString(PyExc_ValueError, "too many marker words");
        return -1;
    }
    for (int i = 0; i < MARKER_SLOTS; i++) self->slot_feature[i] = -1;
    for (Py_ssize_t i = 0; i < nm; i++) {
        unsigned at = (unsigned)(self->marker_hashes[i] * MIX >> 56) & (MARKER_SLOTS - 1);
        while (self->slot_feature[at] >= 0) at = (at + 1) & (MARKER_SLOTS - 1);
        self->slot_hash[at] = self->marker_hashes[i];
        self->slot_feature[at] = self->marker_feature[i];
    }
    PyBuffer_Release(&hv);
    PyBuffer_Release(&fv);
    if (copy_floats(log_tf, &self->log_tf, -1, "log_tf") < 0) return -1;
    if (self->log_tf == NULL) { PyErr_SetString(PyExc_ValueError, "log_tf is required"); return -1; }
    {
        Py_buffer v;
        if (PyObject_GetBuffer(log_tf, &v, PyBUF_SIMPLE) < 0) return -1;
        self->n_log_tf = v.len / (Py_ssize_t)sizeof(float);
        PyBuffer_Release(&v);
    }
    if (copy_floats(idf, &self->idf, (Py_ssize_t)1 << bits, "idf") < 0) return -1;
    if (copy_floats(mean, &self->mean, N_DENSE, "dense_mean") < 0) return -1;
    if (copy_floats(std, &self->std, N_DENSE, "dense_std") < 0) return -1;
    if ((self->mean == NULL) != (self->std == NULL)) {
        PyErr_SetString(PyExc_ValueError, "dense_mean and dense_std: both or neither");
        return -1;
    }
    memset(&self->lower_sub, 0, sizeof(SubstrGroup));
    memset(&self->text_sub, 0, sizeof(SubstrGroup));
    if (read_substrs(lower_sub, &self->lower_sub) < 0) return -1;
    if (read_substrs(text_sub, &self->text_sub) < 0) return -1;
    return 0;
}

/* ------------------------------------------------------------------------------------ hashing */
static inline uint32_t bucket(const Kernel *k, uint64_t h, int ns) {
    uint64_t mixed = (h ^ k->salts[ns]) * MIX;
    return (uint32_t)(mixed >> (64 - k->bits)) + ((uint32_t)ns << k->bits);
}

/* Unigram hashes of the words of codes[0:n] into `uni`; returns how many. */
static Py_ssize_t words_of(const Py_UCS4 *codes, Py_ssize_t n, uint64_t *uni) {
    Py_ssize_t count = 0, i = 0;
    while (i < n) {
        if (!is_word(codes[i])) { i++; continue; }
        uint64_t h = 0;
        while (i < n && is_word(codes[i])) { h = h * BASE + (uint64_t)codes[i] + 1; i++; }
        uni[count++] = h;
    }
    return count;
}

static inline uint64_t bigram(uint64_t a, uint64_t b) { return a * MIX + b + BIGRAM; }

static Py_ssize_t word_keys(const Kernel *k, const uint64_t *uni, Py_ssize_t n, int ns, uint32_t *keys) {
    Py_ssize_t out = 0;
    for (Py_ssize_t i = 0; i < n; i++) keys[out++] = bucket(k, uni[i], ns);
    for (Py_ssize_t i = 0; i + 1 < n; i++) keys[out++] = bucket(k, bigram(uni[i], uni[i + 1]), ns);
    return out;
}

static inline int marker_of(const Kernel *k, uint64_t h) {
    unsigned at = (unsigned)(h * MIX >> 56) & (MARKER_SLOTS - 1);
    while (k->slot_feature[at] >= 0) {
        if (k->slot_hash[at] == h) return k->slot_feature[at];
        at = (at + 1) & (MARKER_SLOTS - 1);
    }
    return -1;
}

/* LSD radix sort of keys (< 2**key_bits), at most 11 bits a pass; `tmp` as long as `keys`. */
static void sort_keys(uint32_t *keys, uint32_t *tmp, Py_ssize_t n, int key_bits) {
    if (n <= 24) {
        for (Py_ssize_t i = 1; i < n; i++) {
            uint32_t v = keys[i];
            Py_ssize_t j = i;
            while (j > 0 && keys[j - 1] > v) { keys[j] = keys[j - 1]; j--; }
            keys[j] = v;
        }
        return;
    }
    /* LSD radix sort, with digits about as wide as log2(n) (at most 11 bits): a short prompt's few
     * dozen keys no longer pay two passes over 2^9 or 2^10 buckets (the bundled model's 18-bit
     * keys: their clearing and prefix sums were ~15 k instructions a request, three 6-bit passes
     * now); once 2^width reaches the former digit's buckets, the digits are those of before. The
     * sorted keys are the same whatever the digits (issue 17, cut17d). */
    int width = 4;
    while (width < 11 && ((Py_ssize_t)1 << width) < n) width++;
    uint32_t *src = keys, *dst = tmp;
    int passes = (key_bits + width - 1) / width, digit = (key_bits + passes - 1) / passes;
    uint32_t mask = ((uint32_t)1 << digit) - 1;
    Py_ssize_t count[2049];
    for (int shift = 0; shift < key_bits; shift += digit) {
        memset(count, 0, (mask + 2) * sizeof(Py_ssize_t));
        for (Py_ssize_t i = 0; i < n; i++) count[((src[i] >> shift) & mask) + 1]++;
        for (uint32_t b = 0; b <= mask; b++) count[b + 1] += count[b];
        for (Py_ssize_t i = 0; i < n; i++) dst[count[(src[i] >> shift) & mask]++] = src[i];
        uint32_t *t = src; src = dst; dst = t;
    }
    if (src != keys) memcpy(keys, src, (size_t)n * sizeof(uint32_t));
}

/* ---------------------------------------------------------------------------------- structure */
/* Non-overlapping occurrences of every marker (str.count each), added to its slot: one pass, each
 * position tried against the markers that start with its character (ASCII first characters). */
static void count_substrs(const SubstrGroup *g, const Py_UCS4 *c, Py_ssize_t n, double *slots) {
    Py_ssize_t count[MAX_SUBSTR] = {0}, next[MAX_SUBSTR] = {0};
    for (Py_ssize_t i = 0; i < n; i++) {
        Py_UCS4 ch = c[i];
        if (ch >= 128 || !g->first[ch]) continue;
        for (uint64_t bits = g->first[ch]; bits; bits &= bits - 1) {
            int m = __builtin_ctzll(bits);
            const Substr *s = &g->subs[m];
            if (i < next[m] || i + s->len > n) continue;
            int j = 1;
            while (j < s->len && c[i + j] == s->s[j]) j++;
            if (j == s->len) { count[m]++; next[m] = i + s->len; }
        }
    }
    for (int m = 0; m < g->n; m++) slots[g->subs[m].slot] += (double)count[m];
}

/* Words (runs of word characters) of c[0:n] that start with a digit. */
static Py_ssize_t numbers(const Py_UCS4 *c, Py_ssize_t n) {
    Py_ssize_t count = 0;
    int prev = 0;
    for (Py_ssize_t i = 0; i < n; i++) {
        int w = is_word(c[i]);
        if (w && !prev && is_digit(c[i])) count++;
        prev = w;
    }
    return count;
}

static Py_ssize_t list_items(const Py_UCS4 *c, Py_ssize_t n) {
    Py_ssize_t count = 0;
    for (Py_ssize_t i = 0; i + 2 < n; i++) {
        if (c[i] != '\n') continue;
        Py_UCS4 nxt = c[i + 1], after = c[i + 2];
        if ((is_digit(nxt) && (after == '.' || after == ')')) || nxt == '-' || nxt == '*' || nxt == 0x2022)
            count++;
    }
    return count;
}

static void structure(const Kernel *k, const Py_UCS4 *text, Py_ssize_t nt, const Py_UCS4 *lower,
                      Py_ssize_t nl, Py_ssize_t ntail, int question_in_tail, const int *marker_counts,
                      float *dense) {
    Py_ssize_t n = nt > 1 ? nt : 1;
    Py_ssize_t classes[4] = {0, 0, 0, 0}, ascii = 0, words_n = 1;
    int prev = 1;   /* word starts after the first character */
    for (Py_ssize_t i = 0; i < nt; i++) {
        Py_UCS4 c = text[i];
        if (c < 128) { ascii++; classes[(int)CLASS_ASCII[c]]++; }
        int w = is_word(c);
        words_n += w && !prev;
        prev = w;
    }
    Py_ssize_t digits = classes[1], upper = classes[2], symbols = classes[3];
    double sub[N_DENSE] = {0};
    count_substrs(&k->text_sub, text, nt, sub);
    count_substrs(&k->lower_sub, lower, nl, sub);
    Py_ssize_t items = nt >= 3 ? list_items(text, nt) : 0;
    Py_ssize_t raw_start = nt - ntail;   /* text[len(text) - len(tail):], Python's slicing */
    if (ntail == 0) raw_start = nt;
    else if (raw_start < 0) { raw_start += nt; if (raw_start < 0) raw_start = 0; }
    const int *mc = marker_counts;   /* constraints, steps, reasoning, recall, math words, stopwords */
    double v[N_DENSE] = {
        log1p((double)nt), log1p((double)words_n), log1p(sub[2]), log1p(sub[3]), log1p((double)ntail),
        (double)digits / (double)n, (double)upper / (double)n, (double)(nt - ascii) / (double)n,
        (double)symbols / (double)n, log1p(sub[9]), log1p(sub[10]), log1p(sub[11]), log1p(sub[12]),
        (double)question_in_tail, log1p((double)numbers(text, nt)),
        log1p((double)numbers(text + raw_start, nt - raw_start)), log1p((double)mc[0]),
        log1p((double)(mc[1] + items)), log1p((double)items), log1p((double)mc[2]), log1p((double)mc[3]),
        log1p((double)mc[4]), log1p(sub[22]), (double)mc[5] / (double)words_n,
        log(1.0 + (double)nt / (double)words_n),
    };
    for (int i = 0; i < N_DENSE; i++) {
        float x = (float)v[i];
        if (k->mean != NULL) {
            x = x - k->mean[i];
            x = x / k->std[i];
        }
        dense[i] = x;
    }
}

/* ---------------------------------------------------------------------------------------- row */
static int has_surrogate(const Py_UCS4 *c, Py_ssize_t n) {
    for (Py_ssize_t i = 0; i < n; i++) if (c[i] >= 0xD800 && c[i] <= 0xDFFF) return 1;
    return 0;
}

static PyObject *row_of(Kernel *self, PyObject *text_obj, PyObject *lower_obj, Py_ssize_t ntail, int question) {
    Py_ssize_t nt = PyUnicode_GET_LENGTH(text_obj), nl = PyUnicode_GET_LENGTH(lower_obj);
    if (ntail < 0 || ntail > nl) { PyErr_SetString(PyExc_ValueError, "tail_len out of range"); return NULL; }
    PyObject *result = NULL;
    Py_UCS4 *text = NULL, *lower = NULL;
    uint64_t *uni = NULL, *tail_uni = NULL;
    uint32_t *keys = NULL, *tmp = NULL;
    text = PyUnicode_AsUCS4Copy(text_obj);
    lower = PyUnicode_AsUCS4Copy(lower_obj);
    if (text == NULL || lower == NULL) goto done;
    if ((!PyUnicode_IS_ASCII(text_obj) && has_surrogate(text, nt)) ||
        (!PyUnicode_IS_ASCII(lower_obj) && has_surrogate(lower, nl))) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    const Py_UCS4 *tail = lower + (nl - ntail);
    Py_ssize_t cap = 2 * nl + 2 * ntail + 2;
    for (int s = 0; s < self->n_sizes; s++) if (ntail >= self->sizes[s]) cap += ntail - self->sizes[s] + 1;
    uni = PyMem_Malloc((size_t)(nl + 1) * sizeof(uint64_t));
    tail_uni = PyMem_Malloc((size_t)(ntail + 1) * sizeof(uint64_t));
    keys = PyMem_Malloc((size_t)cap * sizeof(uint32_t));
    tmp = PyMem_Malloc((size_t)cap * sizeof(uint32_t));
    if (!uni || !tail_uni || !keys || !tmp) { PyErr_NoMemory(); goto done; }
    /* namespace 0: the words of the whole text; their marker counts */
    Py_ssize_t nu = words_of(lower, nl, uni);
    Py_ssize_t nk = word_keys(self, uni, nu, 0, keys);
    int marker_counts[N_MARKER_FEATURES] = {0};
    for (Py_ssize_t i = 0; i < nu; i++) {
        int f = marker_of(self, uni[i]);
        if (f >= 0) marker_counts[f]++;
    }
    for (Py_ssize_t i = 0; i + 1 < nu; i++) {
        int f = marker_of(self, bigram(uni[i], uni[i + 1]));
        if (f >= 0) marker_counts[f]++;
    }
    /* namespace 1: the words of the tail block (the same words when the tail is the whole text) */
    if (ntail == nl) {
        nk += word_keys(self, uni, nu, 1, keys + nk);
    } else {
        Py_ssize_t ntu = words_of(tail, ntail, tail_uni);
        nk += word_keys(self, tail_uni, ntu, 1, keys + nk);
    }
    /* namespace 2: character n-grams of the tail block, from its prefix hashes (the tail's word
     * hashes are no longer needed: their buffer holds them) */
    uint64_t *prefix = tail_uni;
    prefix[0] = 0;
    for (Py_ssize_t i = 0; i < ntail; i++) prefix[i + 1] = prefix[i] * BASE + (uint64_t)tail[i] + 1;
    for (int s = 0; s < self->n_sizes; s++) {
        int size = self->sizes[s];
        uint64_t pw = 1;
        for (int j = 0; j < size; j++) pw *= BASE;
        for (Py_ssize_t i = 0; i + size <= ntail; i++)
            keys[nk++] = bucket(self, prefix[i + size] - prefix[i] * pw + (uint64_t)size, 2);
    }
    /* distinct keys and counts; sublinear tf x idf; L2 per namespace */
    sort_keys(keys, tmp, nk, self->bits + 2);
    Py_ssize_t nd = 0;
    for (Py_ssize_t i = 0; i < nk; i++) if (i == 0 || keys[i] != keys[i - 1]) nd++;
    PyObject *idx_b = PyByteArray_FromStringAndSize(NULL, nd * (Py_ssize_t)sizeof(int64_t));
    PyObject *val_b = PyByteArray_FromStringAndSize(NULL, nd * (Py_ssize_t)sizeof(float));
    PyObject *dense_b = PyByteArray_FromStringAndSize(NULL, N_DENSE * (Py_ssize_t)sizeof(float));
    if (!idx_b || !val_b || !dense_b) { Py_XDECREF(idx_b); Py_XDECREF(val_b); Py_XDECREF(dense_b); goto done; }
    int64_t *idx = (int64_t *)PyByteArray_AS_STRING(idx_b);
    float *w = (float *)PyByteArray_AS_STRING(val_b);
    int *ns_of = (int *)tmp;   /* the sort is done with tmp */
    double norms[N_NS] = {0.0, 0.0, 0.0};
    uint32_t mask = ((uint32_t)1 << self->bits) - 1;
    Py_ssize_t d = 0;
    for (Py_ssize_t i = 0; i < nk;) {
        Py_ssize_t j = i + 1;
        while (j < nk && keys[j] == keys[i]) j++;
        Py_ssize_t count = j - i;
        if (count >= self->n_log_tf) {
            Py_DECREF(idx_b); Py_DECREF(val_b); Py_DECREF(dense_b);
            PyErr_SetString(PyExc_ValueError, "log_tf table too short for this text");
            goto done;
        }
        uint32_t b = keys[i] & mask;
        int ns = (int)(keys[i] >> self->bits);
        float x = self->log_tf[count];
        if (self->idf != NULL) x = x * self->idf[b];
        float sq = x * x;
        norms[ns] += (double)sq;
        idx[d] = (int64_t)b;
        w[d] = x;
        ns_of[d] = ns;
        d++;
        i = j;
    }
    float scale[N_NS];
    for (int s = 0; s < N_NS; s++) {
        double r = sqrt(norms[s]);
        scale[s] = (float)(r > 1e-12 ? r : 1e-12);
    }
    for (Py_ssize_t i = 0; i < nd; i++) w[i] = w[i] / scale[ns_of[i]];
    structure(self, text, nt, lower, nl, ntail, question, marker_counts, (float *)PyByteArray_AS_STRING(dense_b));
    result = PyTuple_Pack(3, idx_b, val_b, dense_b);
    Py_DECREF(idx_b);
    Py_DECREF(val_b);
    Py_DECREF(dense_b);
done:
    PyMem_Free(text);
    PyMem_Free(lower);
    PyMem_Free(uni);
    PyMem_Free(tail_uni);
    PyMem_Free(keys);
    PyMem_Free(tmp);
    return result;
}

static PyObject *Kernel_row(Kernel *self, PyObject *args) {
    PyObject *text_obj, *lower_obj;
    Py_ssize_t ntail;
    int question;
    if (!PyArg_ParseTuple(args, "UUnp", &text_obj, &lower_obj, &ntail, &question)) return NULL;
    return row_of(self, text_obj, lower_obj, ntail, question);
}

/* `features.last_block(lower)`: its length and whether it holds a `?` (rstrip: Python's
 * whitespace; the text after the last blank line; its last tail_chars characters). */
static Py_ssize_t last_block(const Kernel *k, PyObject *lower, int *question) {
    int kind = PyUnicode_KIND(lower);
    const void *data = PyUnicode_DATA(lower);
    Py_ssize_t end = PyUnicode_GET_LENGTH(lower);
    while (end > 0 && Py_UNICODE_ISSPACE(PyUnicode_READ(kind, data, end - 1))) end--;
    Py_ssize_t start = 0, at = end;
    while (at > 1) {   /* str.rfind("\n\n"), by memrchr-like searches for '\n' */
        Py_ssize_t nl = PyUnicode_FindChar(lower, '\n', 0, at, -1);
        if (nl < 1) break;
        if (PyUnicode_READ(kind, data, nl - 1) == '\n' && nl < end) { start = nl + 1; break; }
        at = nl;
    }
    if (end - start > k->tail_chars) start = end - k->tail_chars;
    *question = end > start && PyUnicode_FindChar(lower, '?', start, end, 1) >= 0;
    return end - start;
}

/* row(text): the same as the Python wrapper's clip (done by the caller), lower, last_block, row. */
static PyObject *Kernel_text_row(Kernel *self, PyObject *text_obj) {
    if (!PyUnicode_Check(text_obj)) { PyErr_SetString(PyExc_TypeError, "text must be a str"); return NULL; }
    if (PyUnicode_GET_LENGTH(text_obj) > self->max_chars) {
        PyErr_SetString(PyExc_ValueError, "clip the text to max_chars first");
        return NULL;
    }
    PyObject *lower = PyObject_CallMethod(text_obj, "lower", NULL);
    if (lower == NULL) return NULL;
    if (!PyUnicode_Check(lower)) { Py_DECREF(lower); PyErr_SetString(PyExc_TypeError, "lower() is not a str"); return NULL; }
    if (PyUnicode_GET_LENGTH(lower) > self->max_chars) {   /* lower() may lengthen some Unicode text */
        PyObject *cut = PyUnicode_Substring(lower, 0, self->max_chars);
        Py_DECREF(lower);
        if (cut == NULL) return NULL;
        lower = cut;
    }
    int question;
    Py_ssize_t ntail = last_block(self, lower, &question);
    PyObject *out = row_of(self, text_obj, lower, ntail, question);
    Py_DECREF(lower);
    return out;
}

static PyMethodDef Kernel_methods[] = {
    {"text_row", (PyCFunction)Kernel_text_row, METH_O,
     "text_row(text) -> row(text, lower, tail_len, question) for a text of at most max_chars"},
    {"row", (PyCFunction)Kernel_row, METH_VARARGS,
     "row(text, lower, tail_len, question) -> (indices int64, values float32, dense float32) bytearrays, or None"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject KernelType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmroute.learn._kernel.Kernel",
    .tp_basicsize = sizeof(Kernel),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "The hashing featurizer's tables, and its features of one text (row).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Kernel_init,
    .tp_dealloc = (destructor)Kernel_dealloc,
    .tp_methods = Kernel_methods,
};


/* ---------------------------------------------------------------------------------- projector */
/* `RouterModel._latent_of` from a row's three bytearrays: z = [values @ projection[indices] -
 * latent_mean (float32); dense]. The sum runs in float64, in the row's order, then rounds to
 * float32: numpy's float32 BLAS product sums in its own order, so z may differ from it in the last
 * bits (tests/learn/test_features_kernel.py bounds what that does to P(good) and decisions). */
typedef struct {
    PyObject_HEAD
    Py_buffer proj;     /* float32 or float16 (the artifact's own dtype, not copied), rows x k, C order */
    int held;
    int half;           /* proj holds float16: each value is widened (exactly) by `half_table` */
    Py_ssize_t rows, k;
    float *mean;        /* k */
} Projector;

/* float16 bits -> float32, exact for every value (IEEE 754 binary16 widens to binary32 without
 * rounding); built once, when the first float16 projection arrives (256 KiB). */
static float *half_table = NULL;

static float half_to_float(uint16_t h) {
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16, exp = (h >> 10) & 0x1fu, man = h & 0x3ffu, bits;
    if (exp == 0x1fu) bits = sign | 0x7f800000u | (man << 13);                  /* inf, nan */
    else if (exp != 0) bits = sign | ((exp + 112u) << 23) | (man << 13);         /* normal */
    else {                                                                          /* zero, subnormal */
        float f = (float)man * 0x1p-24f;                                            /* exact */
        memcpy(&bits, &f, 4);
        bits |= sign;
    }
    float out;
    memcpy(&out, &bits, 4);
    return out;
}

static int ensure_half_table(void) {
    if (half_table != NULL) return 0;
    float *t = PyMem_Malloc(65536 * sizeof(float));
    if (t == NULL) { PyErr_NoMemory(); return -1; }
    for (uint32_t h = 0; h < 65536; h++) t[h] = half_to_float((uint16_t)h);
    half_table = t;
    return 0;
}

/* The float16 rows' sums with the CPU's own float16 conversion (F16C) and 4-wide float64 adds,
 * where the CPU has AVX and F16C (checked once, at import; `simd()` says and switches it, for
 * tests): per output the same products (float16 -> float32 -> float64 exactly, times the float64
 * value) added in the same order as the scalar loop below, so z is the same bit for bit (the
 * kernel is built with -ffp-contract=off: no fused multiply-adds on either path). Eight outputs
 * at a time; the rest (k not a multiple of 8) go through `half_table`. */
static int use_simd = 0;

#if (defined(__x86_64__) || defined(__i386__)) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define HAVE_SIMD_PATH 1

__attribute__((target("avx,f16c")))
static void half_rows_simd(const int64_t *idx, const float *val, Py_ssize_t n, const uint16_t *proj,
                           Py_ssize_t k, double *acc) {
    Py_ssize_t k8 = k - k % 8;
    __m256d sums[16];   /* k <= 64 */
    for (Py_ssize_t j = 0; j < k8 / 4; j++) sums[j] = _mm256_setzero_pd();
    for (Py_ssize_t i = 0; i < n; i++) {
        const uint16_t *r = proj + idx[i] * k;
        __m256d v = _mm256_set1_pd((double)val[i]);
        for (Py_ssize_t j = 0; j < k8; j += 8) {
            __m256 f = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(r + j)));
            __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(f));
            __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(f, 1));
            sums[j / 4] = _mm256_add_pd(sums[j / 4], _mm256_mul_pd(v, lo));
            sums[j / 4 + 1] = _mm256_add_pd(sums[j / 4 + 1], _mm256_mul_pd(v, hi));
        }
        for (Py_ssize_t j = k8; j < k; j++) acc[j] += (double)val[i] * (double)half_table[r[j]];
    }
    for (Py_ssize_t j = 0; j < k8 / 4; j++) _mm256_storeu_pd(acc + 4 * j, sums[j]);
}

static int simd_supported(void) {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx") && __builtin_cpu_supports("f16c");
}
#else
static int simd_supported(void) { return 0; }
#endif

static PyObject *kernel_simd(PyObject *module, PyObject *args) {
    int on = -1;
    if (!PyArg_ParseTuple(args, "|p", &on)) return NULL;
    if (on >= 0) use_simd = on && simd_supported();
    return PyBool_FromLong(use_simd);
}

static void Projector_dealloc(Projector *self) {
    if (self->held) PyBuffer_Release(&self->proj);
    PyMem_Free(self->mean);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int Projector_init(Projector *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"projection", "latent_mean", NULL};
    PyObject *proj, *mean;
    if (self->held) { PyErr_SetString(PyExc_RuntimeError, "already initialised"); return -1; }
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "OO", kwlist, &proj, &mean)) return -1;
    if (PyObject_GetBuffer(proj, &self->proj, PyBUF_C_CONTIGUOUS | PyBUF_FORMAT | PyBUF_ND) < 0) return -1;
    self->held = 1;
    int f32 = self->proj.itemsize == 4 && strcmp(self->proj.format, "f") == 0;
    int f16 = self->proj.itemsize == 2 && strcmp(self->proj.format, "e") == 0;
    if (self->proj.ndim != 2 || !(f32 || f16)) {
        PyErr_SetString(PyExc_ValueError, "projection: a C-contiguous 2-D float32 or float16 array");
        return -1;
    }
    self->half = f16;
    if (f16 && ensure_half_table() < 0) return -1;
    self->rows = self->proj.shape[0];
    self->k = self->proj.shape[1];
    if (copy_floats(mean, &self->mean, self->k, "latent_mean") < 0) return -1;
    if (self->mean == NULL) { PyErr_SetString(PyExc_ValueError, "latent_mean is required"); return -1; }
    return 0;
}

static PyObject *Projector_latent(Projector *self, PyObject *args) {
    Py_buffer ib, vb, db;
    if (!self->held || self->mean == NULL) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    if (!PyArg_ParseTuple(args, "y*y*y*", &ib, &vb, &db)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t n = ib.len / 8, nd = db.len / 4;
    if (ib.len % 8 || vb.len != n * 4 || db.len % 4) {
        PyErr_SetString(PyExc_ValueError, "indices int64, values float32 (as many), dense float32");
        goto done;
    }
    const int64_t *idx = ib.buf;
    const float *val = vb.buf;
    Py_ssize_t k = self->k;
    double acc[64];
    if (k > 64) { PyErr_SetString(PyExc_ValueError, "at most 64 latent skills"); goto done; }
    for (Py_ssize_t j = 0; j < k; j++) acc[j] = 0.0;
#ifdef HAVE_SIMD_PATH
    if (self->half && use_simd) {
        for (Py_ssize_t i = 0; i < n; i++)
            if (idx[i] < 0 || idx[i] >= self->rows) { PyErr_SetString(PyExc_IndexError, "index out of range"); goto done; }
        half_rows_simd(idx, val, n, (const uint16_t *)self->proj.buf, k, acc);
        n = 0;   /* summed: the scalar loop below has nothing left to add */
    }
#endif
    for (Py_ssize_t i = 0; i < n; i++) {
        if (idx[i] < 0 || idx[i] >= self->rows) { PyErr_SetString(PyExc_IndexError, "index out of range"); goto done; }
        double v = (double)val[i];
        if (self->half) {   /* the same sums: each float16 widens exactly to the float32 it stands for */
            const uint16_t *r = (const uint16_t *)self->proj.buf + idx[i] * k;
            for (Py_ssize_t j = 0; j < k; j++) acc[j] += v * (double)half_table[r[j]];
        } else {
            const float *r = (const float *)self->proj.buf + idx[i] * k;
            for (Py_ssize_t j = 0; j < k; j++) acc[j] += v * (double)r[j];
        }
    }
    out = PyByteArray_FromStringAndSize(NULL, (k + nd) * 4);
    if (out == NULL) goto done;
    float *z = (float *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t j = 0; j < k; j++) { float s = (float)acc[j]; z[j] = s - self->mean[j]; }
    memcpy(z + k, db.buf, (size_t)db.len);
done:
    PyBuffer_Release(&ib);
    PyBuffer_Release(&vb);
    PyBuffer_Release(&db);
    return out;
}

static PyMethodDef Projector_methods[] = {
    {"latent", (PyCFunction)Projector_latent, METH_VARARGS,
     "latent(indices, values, dense) -> z float32 as a bytearray"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ProjectorType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmroute.learn._kernel.Projector",
    .tp_basicsize = sizeof(Projector),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "A model's projection and latent mean: the latent vector of a row (latent).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Projector_init,
    .tp_dealloc = (destructor)Projector_dealloc,
    .tp_methods = Projector_methods,
};


/* --------------------------------------------------------------------------------------- pool */
/* `RouterModel.predict_latent` for one latent vector over one pool: per model, logit = bias +
 * ability . z, answer length = exp(length_bias + length . z), cost = chars * input price + length *
 * output price, P(good) = (1 + tanh(logit / 2)) / 2. The dot products sum in float64 in z's order
 * and exp / tanh are libm's: numpy's BLAS order and SIMD functions may differ in the last bits. */
typedef struct {
    PyObject_HEAD
    Py_ssize_t m, d;
    double *ability, *length;   /* m x d each, row per model */
    double *bias, *length_bias, *input_price, *output_price;   /* m each */
} Pool;

static void Pool_dealloc(Pool *self) {
    PyMem_Free(self->ability);
    PyMem_Free(self->length);
    PyMem_Free(self->bias);
    PyMem_Free(self->length_bias);
    PyMem_Free(self->input_price);
    PyMem_Free(self->output_price);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int copy_doubles(PyObject *obj, double **out, Py_ssize_t want, const char *what) {
    Py_buffer view;
    if (PyObject_GetBuffer(obj, &view, PyBUF_C_CONTIGUOUS) < 0) return -1;
    if (view.len != want * (Py_ssize_t)sizeof(double)) {
        PyBuffer_Release(&view);
        PyErr_Format(PyExc_ValueError, "%s: wrong size", what);
        return -1;
    }
    PyMem_Free(*out);
    *out = PyMem_Malloc(want ? (size_t)view.len : 1);
    if (*out == NULL) { PyBuffer_Release(&view); PyErr_NoMemory(); return -1; }
    memcpy(*out, view.buf, (size_t)view.len);
    PyBuffer_Release(&view);
    return 0;
}

static int Pool_init(Pool *self, PyObject *args, PyObject *kwds) {
    static char *kwlist[] = {"models", "dim", "abilities", "biases", "lengths", "length_biases",
                             "input_prices", "output_prices", NULL};
    Py_ssize_t m, d;
    PyObject *ab, *bi, *le, *lb, *ip, *op;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "nnOOOOOO", kwlist, &m, &d, &ab, &bi, &le, &lb, &ip, &op))
        return -1;
    if (m < 1 || d < 1) { PyErr_SetString(PyExc_ValueError, "an empty pool"); return -1; }
    self->m = m;
    self->d = d;
    if (copy_doubles(ab, &self->ability, m * d, "abilities") < 0 || copy_doubles(le, &self->length, m * d, "lengths") < 0
        || copy_doubles(bi, &self->bias, m, "biases") < 0 || copy_doubles(lb, &self->length_bias, m, "length_biases") < 0
        || copy_doubles(ip, &self->input_price, m, "input_prices") < 0
        || copy_doubles(op, &self->output_price, m, "output_prices") < 0)
        return -1;
    return 0;
}

static PyObject *Pool_predict(Pool *self, PyObject *args) {
    Py_buffer zb;
    double chars;
    if (self->ability == NULL || self->output_price == NULL) { PyErr_SetString(PyExc_RuntimeError, "not initialised"); return NULL; }
    if (!PyArg_ParseTuple(args, "y*d", &zb, &chars)) return NULL;
    PyObject *out = NULL;
    Py_ssize_t m = self->m, d = self->d;
    if (zb.len != d * 4) { PyErr_SetString(PyExc_ValueError, "z: float32, the model's latent size"); goto done; }
    out = PyByteArray_FromStringAndSize(NULL, 3 * m * (Py_ssize_t)sizeof(double));
    if (out == NULL) goto done;
    const float *z = zb.buf;
    double *res = (double *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t j = 0; j < m; j++) {
        const double *a = self->ability + j * d, *l = self->length + j * d;
        double logit = 0.0, len = 0.0;
        for (Py_ssize_t i = 0; i < d; i++) {
            double zi = (double)z[i];
            logit += zi * a[i];
            len += zi * l[i];
        }
        logit += self->bias[j];
        double chars_out = exp(len + self->length_bias[j]);
        res[j] = 0.5 * (1.0 + tanh(0.5 * logit));
        res[m + j] = chars * self->input_price[j] + chars_out * self->output_price[j];
        res[2 * m + j] = chars_out;
    }
done:
    PyBuffer_Release(&zb);
    return out;
}

static PyMethodDef Pool_methods[] = {
    {"predict", (PyCFunction)Pool_predict, METH_VARARGS,
     "predict(z, chars) -> P(good), cost, answer chars: 3 x models float64, as a bytearray"},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject PoolType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "llmroute.learn._kernel.Pool",
    .tp_basicsize = sizeof(Pool),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "One pool's model tables: predictions for one latent vector (predict).",
    .tp_new = PyType_GenericNew,
    .tp_init = (initproc)Pool_init,
    .tp_dealloc = (destructor)Pool_dealloc,
    .tp_methods = Pool_methods,
};

static PyMethodDef kernel_functions[] = {
    {"simd", kernel_simd, METH_VARARGS,
     "simd([on]) -> bool: whether float16 projections are summed with AVX/F16C (switched by `on`, "
     "never on where the CPU lacks them; the same sums either way)"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef kernel_module = {
    PyModuleDef_HEAD_INIT, "_kernel", "The hashing featurizer's compiled kernel (optional).", -1,
    kernel_functions,
};

PyMODINIT_FUNC PyInit__kernel(void) {
    if (PyType_Ready(&KernelType) < 0 || PyType_Ready(&ProjectorType) < 0 || PyType_Ready(&PoolType) < 0) return NULL;
    PyObject *m = PyModule_Create(&kernel_module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "Kernel", (PyObject *)&KernelType) < 0) { Py_DECREF(m); return NULL; }
    if (PyModule_AddObjectRef(m, "Projector", (PyObject *)&ProjectorType) < 0) { Py_DECREF(m); return NULL; }
    if (PyModule_AddObjectRef(m, "Pool", (PyObject *)&PoolType) < 0) { Py_DECREF(m); return NULL; }
    if (PyModule_AddIntConstant(m, "ABI", 1) < 0) { Py_DECREF(m); return NULL; }
    use_simd = simd_supported();
    return m;
}
