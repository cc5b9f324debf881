/* Reading a fuzzer's bytes as typed values. Every reader consumes a fixed number of bytes
 * per decision where it can, so that a mutation of one byte changes one field and the
 * rest of the input keeps its meaning. Past the end of the input every read is zero. */
#ifndef CONVBLAS_FUZZ_BYTES_H
#define CONVBLAS_FUZZ_BYTES_H

#include <stddef.h>
#include <stdint.h>

typedef struct fz_bytes {
    const uint8_t *data;
    size_t size, pos;
} fz_bytes;

static inline fz_bytes fz_start(const uint8_t *data, size_t size) {
    return (fz_bytes){.data = data, .size = size, .pos = 0};
}

uint8_t fz_u8(fz_bytes *b);
/* n little-endian bytes (n <= 8). */
uint64_t fz_raw(fz_bytes *b, int n);
/* A value in [0, n) from one byte (n <= 256). */
int fz_pick(fz_bytes *b, int n);

/* An enum field: mostly one of its n valid values or the first value past them, sometimes
 * any int (negative, huge). */
int fz_enum(fz_bytes *b, int n);
/* An int64_t field: mostly small (the sizes a layer has), sometimes negative, a boundary
 * of int32/int64 arithmetic (INT64_MAX, INT64_MIN, 2^62, 2^31, ...) or raw bytes. */
int64_t fz_i64(fz_bytes *b);
/* An int field (threads): small, negative, INT_MAX/INT_MIN or raw. */
int fz_int(fz_bytes *b);
/* A float: 0, small ones, NaN, infinities, denormals, huge, or raw bits. */
float fz_float(fz_bytes *b);
/* A size_t byte count: 0, tiny, powers of two around cache and MiB sizes, SIZE_MAX, raw. */
size_t fz_size(fz_bytes *b);

/* A 64-bit hash of the whole input (FNV-1a), to seed a PRNG. */
uint64_t fz_hash(const uint8_t *data, size_t size);

#endif
