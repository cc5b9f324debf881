#include "fuzz_bytes.h"

#include <float.h>
#include <limits.h>
#include <math.h>
#include <string.h>

uint8_t fz_u8(fz_bytes *b) {
    return b->pos < b->size ? b->data[b->pos++] : 0;
}

uint64_t fz_raw(fz_bytes *b, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v |= (uint64_t)fz_u8(b) << (8 * i);
    return v;
}

int fz_pick(fz_bytes *b, int n) {
    return n > 0 ? fz_u8(b) % n : 0;
}

int fz_enum(fz_bytes *b, int n) {
    uint8_t t = fz_u8(b);
    if (t < 0xF0) return t % (n + 1);
    return (int)(uint32_t)fz_raw(b, 4);
}

/* Values where size arithmetic overflows or changes sign. */
static const int64_t edge_i64[] = {
    INT64_MAX,
    INT64_MIN,
    INT64_MAX - 1,
    INT64_MIN + 1,
    (int64_t)1 << 62,
    -((int64_t)1 << 62),
    ((int64_t)1 << 62) + 1,
    (int64_t)1 << 32,
    ((int64_t)1 << 32) + 1,
    (int64_t)1 << 31,
    ((int64_t)1 << 31) - 1,
    -((int64_t)1 << 31),
    (int64_t)1 << 40,
    (int64_t)1 << 21,
    3037000499, /* floor(sqrt(2^63 - 1)): its square just fits */
    3037000500,
    (int64_t)1 << 16,
    1000003,
    INT32_MAX / 4 + 1,
    -1,
};

int64_t fz_i64(fz_bytes *b) {
    uint8_t t = fz_u8(b);
    switch (t >> 5) {
    case 0: /* 0..31, the common case twice over */
    case 1:
    case 2:
    case 3:
        return t & 31;
    case 4:
        return -(int64_t)(t & 31);
    case 5:
        return edge_i64[(t & 31) % (sizeof edge_i64 / sizeof edge_i64[0])];
    case 6:
        return (int64_t)fz_u8(b) * ((t & 31) + 1); /* up to 8160: tall but plannable */
    default:
        return (int64_t)fz_raw(b, 8);
    }
}

int fz_int(fz_bytes *b) {
    uint8_t t = fz_u8(b);
    switch (t >> 6) {
    case 0:
    case 1:
        return t & 7;
    case 2: {
        static const int edge[] = {-1, INT_MIN, INT_MAX, -2, 4096, 4097, 65, 256};
        return edge[t & 7];
    }
    default:
        return (int)(uint32_t)fz_raw(b, 4);
    }
}

float fz_float(fz_bytes *b) {
    uint8_t t = fz_u8(b);
    static const float edge[] = {0.0f,  0.2f,    1.0f,    -1.0f,  0.5f,     -0.0f,  1e-3f, -3.5f,
                                 1e30f, FLT_MAX, FLT_MIN, 1e-45f, -FLT_MAX, 100.0f, 0.01f, 2.0f};
    if (t < 0xC0) return edge[t % (sizeof edge / sizeof edge[0])];
    if (t < 0xD0) return NAN;
    if (t < 0xD8) return INFINITY;
    if (t < 0xE0) return -INFINITY;
    uint32_t bits = (uint32_t)fz_raw(b, 4);
    float f;
    memcpy(&f, &bits, sizeof f);
    return f;
}

size_t fz_size(fz_bytes *b) {
    uint8_t t = fz_u8(b);
    static const size_t edge[] = {0,
                                  1,
                                  3,
                                  4,
                                  64,
                                  4096,
                                  (size_t)16 << 10,
                                  (size_t)64 << 10,
                                  (size_t)1 << 20,
                                  (size_t)256 << 20,
                                  SIZE_MAX,
                                  SIZE_MAX / 2,
                                  SIZE_MAX / 4 + 1,
                                  (size_t)1 << 32,
                                  ((size_t)1 << 31) - 1};
    if (t < 0x80) return 0; /* the build's default: the common case */
    if (t < 0xE0) return edge[t % (sizeof edge / sizeof edge[0])];
    return (size_t)fz_raw(b, 8);
}

uint64_t fz_hash(const uint8_t *data, size_t size) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < size; i++) h = (h ^ data[i]) * 0x100000001b3ULL;
    return h;
}
