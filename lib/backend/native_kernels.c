/*
 * Coherence Lab's native GEMM against a pre-packed right operand: C = A B (+ bias), fp32, row-major.
 *
 * Why: OpenBLAS repacks the right operand on every call. For a model's weights, which stay the same over
 * thousands of calls, that repacking is most of the cost at the few-row shapes of batched decoding (and a
 * sixth of it at prefill). Here a weight is packed once (cl_pack) into panels of NR columns, zero-padded,
 * each panel K rows of NR contiguous floats, and every product streams the panels straight through.
 *
 * Blocking: K in chunks of KC so that one chunk of a panel (KC x NR floats, 32 KiB with AVX-512) stays in
 * L1 while every MR-row block of A runs over it; A's KC-wide column block stays in L2 across panels.
 * Accumulators: MR x NR floats in 2 * MR vector registers; FMA contraction comes from -ffp-contract=fast
 * (GCC's default for GNU C).
 *
 * Built by tools/build_native.ts (cc -O3 -march=native); loaded through Deno's FFI by native_kernels.ts.
 * Vector width follows the target: 16 lanes with AVX-512, else 8 (AVX2, NEON as two 128-bit halves).
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#if defined(__AVX512F__)
#define LANES 16
#else
#define LANES 8
#endif
#define NR (2 * LANES)
#ifndef MR
#define MR 8
#endif
#ifndef KC
#define KC 256
#endif
#ifndef PF
#define PF 16
#endif
/* Decode attention prefetches APF cache rows ahead (8 measured 1.2x over none and over 16, cold cache). */
#ifndef APF
#define APF 8
#endif

typedef float vf __attribute__((vector_size(LANES * 4)));
typedef float vfu __attribute__((vector_size(LANES * 4), aligned(4)));

static inline vf vload(const float *p) { return *(const vfu *)p; }
static inline void vstore(float *p, vf v) { *(vfu *)p = v; }
/* An initializer list, not `(vf){0} + x`: GCC then broadcasts straight from memory (a load port)
 * instead of an add and a register shuffle that compete with the FMAs. */
#if LANES == 16
#define SPLAT(x) ((vf){x, x, x, x, x, x, x, x, x, x, x, x, x, x, x, x})
#else
#define SPLAT(x) ((vf){x, x, x, x, x, x, x, x})
#endif
static inline vf splat(float x) { return SPLAT(x); }

/* ABI version: native_kernels.ts refuses a library built from another version of this file. */
int cl_native_version(void) { return 2; }

/* The FNV-1a hash of this file's text, stamped by tools/build_native.ts (-DCL_SOURCE_HASH=...): the loader
 * refuses a default build made from another version of the file. */
#ifndef CL_SOURCE_HASH
#define CL_SOURCE_HASH 0u
#endif
unsigned int cl_native_source_hash(void) { return CL_SOURCE_HASH; }

/* Columns per packed panel (the packed layout depends on it). */
int cl_gemm_panel_width(void) { return NR; }

/* Floats needed to pack a K x N right operand. */
size_t cl_packed_floats(int k, int n) { return (size_t)((n + NR - 1) / NR) * (size_t)k * NR; }

/*
 * Packs B (K x N; trans = 0: B[k][n] at b[k * ldb + n]; trans = 1: stored as N x K, B[k][n] at
 * b[n * ldb + k]) into `out` (cl_packed_floats(k, n) floats).
 */
void cl_pack(const float *b, int ldb, int trans, int k, int n, float *out) {
  int panels = (n + NR - 1) / NR;
  for (int p = 0; p < panels; p++) {
    int j0 = p * NR, w = n - j0 < NR ? n - j0 : NR;
    float *dst = out + (size_t)p * k * NR;
    if (!trans) {
      for (int kk = 0; kk < k; kk++) {
        float *d = dst + (size_t)kk * NR;
        memcpy(d, b + (size_t)kk * ldb + j0, (size_t)w * 4);
        for (int j = w; j < NR; j++) d[j] = 0;
      }
    } else {
      /* A transpose in blocks of 64 k: the block's 64 x NR floats (8 KiB with AVX-512) stay in L1 while
       * each stored row contributes a contiguous run of 64. */
      for (int k0 = 0; k0 < k; k0 += 64) {
        int k1 = k - k0 < 64 ? k : k0 + 64;
        for (int j = 0; j < w; j++) {
          const float *s = b + (size_t)(j0 + j) * ldb;
          for (int kk = k0; kk < k1; kk++) dst[(size_t)kk * NR + j] = s[kk];
        }
        for (int kk = k0; kk < k1; kk++)
          for (int j = w; j < NR; j++) dst[(size_t)kk * NR + j] = 0;
      }
    }
  }
}

/*
 * One MR_ x NR tile over kc steps: c (ldc) = init ? bias + a bp : c + a bp. Inlined with a constant MR_ so
 * that the accumulators live in registers.
 */
static inline __attribute__((always_inline)) void tile(const int mr, int kc, const float *a, long lda,
                                                        const float *bp, float *c, long ldc, int init,
                                                        const float *bias) {
  vf acc0[MR], acc1[MR];
  if (init) {
    vf b0 = bias ? vload(bias) : splat(0), b1 = bias ? vload(bias + LANES) : splat(0);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) acc0[r] = b0, acc1[r] = b1;
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) acc0[r] = vload(c + r * ldc), acc1[r] = vload(c + r * ldc + LANES);
  }
  for (int k = 0; k < kc; k++) {
    vf b0 = vload(bp + (size_t)k * NR), b1 = vload(bp + (size_t)k * NR + LANES);
    /* The first row block streams the panel from memory: ask for it PF steps ahead (measured: 1.3x at
     * 16 rows, 1.1x at 128). Past the panel's end this touches the next one, which comes next anyway. */
    __builtin_prefetch(bp + (size_t)(k + PF) * NR);
    __builtin_prefetch(bp + (size_t)(k + PF) * NR + LANES);
#pragma GCC unroll 8
    for (int r = 0; r < mr; r++) {
      vf x = splat(a[r * lda + k]);
      acc0[r] += x * b0;
      acc1[r] += x * b1;
    }
  }
#pragma GCC unroll 8
  for (int r = 0; r < mr; r++) vstore(c + r * ldc, acc0[r]), vstore(c + r * ldc + LANES, acc1[r]);
}

static void tile_rows(int mr, int kc, const float *a, long lda, const float *bp, float *c, long ldc, int init,
                      const float *bias) {
  switch (mr) {
  case 8: tile(8, kc, a, lda, bp, c, ldc, init, bias); break;
  case 7: tile(7, kc, a, lda, bp, c, ldc, init, bias); break;
  case 6: tile(6, kc, a, lda, bp, c, ldc, init, bias); break;
  case 5: tile(5, kc, a, lda, bp, c, ldc, init, bias); break;
  case 4: tile(4, kc, a, lda, bp, c, ldc, init, bias); break;
  case 3: tile(3, kc, a, lda, bp, c, ldc, init, bias); break;
  case 2: tile(2, kc, a, lda, bp, c, ldc, init, bias); break;
  default: tile(1, kc, a, lda, bp, c, ldc, init, bias); break;
  }
}

/*
 * C (M x N, ldc) = A (M x K, lda) B + bias, with B packed by cl_pack. `bias` (N floats) may be NULL.
 * A partial last panel computes all NR columns into a scratch tile and copies back the valid ones.
 */
void cl_gemm_packed(int m, int n, int k, const float *a, int lda, const float *bp, float *c, int ldc,
                    const float *bias) {
  int panels = (n + NR - 1) / NR;
  float scratch[MR * NR] __attribute__((aligned(64)));
  float pbias[NR] __attribute__((aligned(64)));
  /* Rows in blocks of about 1.5 MiB of A (most of an L2), so that A is re-read from L2, not L3, across
   * panels; inside a block, panel-major: each panel is read front to back in one sweep, which the hardware
   * prefetcher follows. */
  int mc = k > 0 ? (int)((3 << 19) / ((size_t)k * 4)) / MR * MR : m;
  if (mc < MR) mc = MR;
  for (int i0 = 0; i0 < m; i0 += mc) {
    int i1 = m - i0 < mc ? m : i0 + mc;
    for (int p = 0; p < panels; p++) {
      int j0 = p * NR, w = n - j0 < NR ? n - j0 : NR;
      const float *bb = bias ? bias + j0 : NULL;
      if (w < NR && bias) {
        memset(pbias, 0, sizeof pbias);
        memcpy(pbias, bias + j0, (size_t)w * 4);
        bb = pbias;
      }
      for (int k0 = 0; k0 < k || k0 == 0; k0 += KC) {
        int kc = k - k0 < KC ? k - k0 : KC;
        int init = k0 == 0;
        const float *bpp = bp + (size_t)p * k * NR + (size_t)k0 * NR;
        for (int i = i0; i < i1; i += MR) {
          int mr = i1 - i < MR ? i1 - i : MR;
          const float *ai = a + (size_t)i * lda + k0;
          float *ci = c + (size_t)i * ldc + j0;
          if (w == NR) {
            tile_rows(mr, kc, ai, lda, bpp, ci, ldc, init, bb);
          } else {
            if (!init)
              for (int r = 0; r < mr; r++) memcpy(scratch + r * NR, ci + (size_t)r * ldc, (size_t)w * 4);
            tile_rows(mr, kc, ai, lda, bpp, scratch, NR, init, bb);
            for (int r = 0; r < mr; r++) memcpy(ci + (size_t)r * ldc, scratch + r * NR, (size_t)w * 4);
          }
        }
        if (k == 0) break;
      }
    }
  }
}

/* ---- GELU (tanh form) ---------------------------------------------------------------------------------- */

typedef int vi __attribute__((vector_size(LANES * 4)));

static inline vf vsel(vi m, vf a, vf b) { return (vf)(((vi)a & m) | ((vi)b & ~m)); }

/* exp(x), Cephes' single-precision method (range reduction by ln 2 in two parts, a degree-6 polynomial;
 * about 1 ulp): x is clamped to [-87, 88] so that 2^n stays a normal float. */
static inline vf vexp(vf x) {
  x = vsel(x < splat(-87.0f), splat(-87.0f), x);
  x = vsel(x > splat(88.0f), splat(88.0f), x);
  /* Round x log2(e) to the nearest integer with the 1.5 * 2^23 trick; its low bits are then the integer. */
  vf t = x * splat(1.44269504088896341f) + splat(12582912.0f);
  vi n = (vi)t - (vi)splat(12582912.0f);
  vf fn = t - splat(12582912.0f);
  vf r = x - fn * splat(0.693359375f) - fn * splat(-2.12194440e-4f);
  vf p = splat(1.9875691500e-4f);
  p = p * r + splat(1.3981999507e-3f);
  p = p * r + splat(8.3334519073e-3f);
  p = p * r + splat(4.1665795894e-2f);
  p = p * r + splat(1.6666665459e-1f);
  p = p * r + splat(5.0000001201e-1f);
  p = p * r * r + r + splat(1.0f);
  vi scale = (n + 127) << 23;
  return p * (vf)scale;
}

/* x * sigmoid(x (c1 + c2 x^2)) = 0.5 x (1 + tanh(x (c1 + c2 x^2) / 2)): GPT-2's gelu_new with
 * c1 = 2 sqrt(2 / pi), c2 = 0.044715 c1. */
static inline vf vgelu(vf x, float c1, float c2) {
  vf z = x * (splat(c1) + splat(c2) * x * x);
  return x / (splat(1.0f) + vexp(-z));
}

/* y[i] = gelu_tanh(x[i]) for i < n (y may be x). */
void cl_gelu_tanh(const float *x, float *y, long n, float c1, float c2) {
  long i = 0;
  for (; i + LANES <= n; i += LANES) vstore(y + i, vgelu(vload(x + i), c1, c2));
  if (i < n) {
    float tmp[LANES] = {0};
    memcpy(tmp, x + i, (size_t)(n - i) * 4);
    vstore(tmp, vgelu(vload(tmp), c1, c2));
    memcpy(y + i, tmp, (size_t)(n - i) * 4);
  }
}

/* ---- One-token decode attention over a KV cache -------------------------------------------------------- */

static inline float hsum(vf v) {
  float s = 0;
  for (int i = 0; i < LANES; i++) s += v[i];
  return s;
}

static inline float dot(const float *a, const float *b, int n) {
  vf acc = splat(0);
  int i = 0;
  for (; i + LANES <= n; i += LANES) acc += vload(a + i) * vload(b + i);
  float s = hsum(acc);
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

/* y[0..n) += w x[0..n) */
static inline void axpy(float w, const float *x, float *y, int n) {
  vf vw = splat(w);
  int i = 0;
  for (; i + LANES <= n; i += LANES) vstore(y + i, vload(y + i) + vw * vload(x + i));
  for (; i < n; i++) y[i] += w * x[i];
}

/*
 * z = softmax(q k^T scale + mask) v for one query per head, over the first `length` columns of a cache:
 * q [b, h, hd], k and v [b, hkv, cap, hd], mask [b, length] (additive) or NULL, z [b, h, hd]. Query head i of
 * row r reads key/value head i / (h / hkv). Why native: the cache is the one operand that grows with the
 * context, and a decode step should read it once at memory speed. One pass over blocks of TB columns with
 * an online softmax (a running maximum and sum, the accumulator rescaled when the maximum grows), so that K
 * and V stream together; the G query heads of a group share the pass. Returns 0, or -1 for hd > MAX_HD.
 */
#define TB 32
#define MAX_HD 512
int cl_decode_attention(int b, int h, int hkv, int cap, int length, int hd, float scale, const float *q,
                        const float *k, const float *v, const float *mask, float *z) {
  int g = h / hkv;
  if (hd > MAX_HD) return -1;
  float acc[MAX_HD] __attribute__((aligned(64)));
  float s[TB] __attribute__((aligned(64)));
  for (int r = 0; r < b; r++) {
    const float *m = mask ? mask + (size_t)r * length : NULL;
    for (int j = 0; j < hkv; j++) {
      const float *kb = k + (size_t)(r * hkv + j) * cap * hd, *vb = v + (size_t)(r * hkv + j) * cap * hd;
      for (int i = 0; i < g; i++) {
        const float *qh = q + (size_t)(r * h + j * g + i) * hd;
        float mx = -3.0e38f, sum = 0;
        memset(acc, 0, (size_t)hd * 4);
        for (int t0 = 0; t0 < length; t0 += TB) {
          int tb = length - t0 < TB ? length - t0 : TB;
          float bm = -3.0e38f;
          for (int t = 0; t < tb; t++) {
            const float *kt = kb + (size_t)(t0 + t) * hd;
            for (int c = 0; c < hd; c += 16) __builtin_prefetch(kt + (size_t)APF * hd + c);
            float x = dot(qh, kt, hd) * scale + (m ? m[t0 + t] : 0.0f);
            s[t] = x;
            bm = x > bm ? x : bm;
          }
          if (bm > mx) {
            float f = vexp(splat(mx - bm))[0];
            sum *= f;
            for (int c = 0; c < hd; c++) acc[c] *= f;
            mx = bm;
          }
          for (int t = 0; t < tb; t += LANES) {
            vf e = vexp(vload(s + t) - splat(mx));
            vstore(s + t, e);
          }
          for (int t = 0; t < tb; t++) {
            const float *vt = vb + (size_t)(t0 + t) * hd;
            for (int c = 0; c < hd; c += 16) __builtin_prefetch(vt + (size_t)APF * hd + c);
            sum += s[t];
            axpy(s[t], vt, acc, hd);
          }
        }
        float inv = 1.0f / sum, *zh = z + (size_t)(r * h + j * g + i) * hd;
        for (int c = 0; c < hd; c++) zh[c] = acc[c] * inv;
      }
    }
  }
  return 0;
}
