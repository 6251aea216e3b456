// midtrain native BLAS addon (Node-API, C99).
//
// Runs single-precision matrix products through the machine's BLAS (OpenBLAS on Linux, or
// whatever library MIDTRAIN_BLAS_LIB names) on Float32Array views, plus the softmax
// cross-entropy of a language-model head (forward and gradient, one pass each, no [N, V]
// intermediates). The views may point into
// tfjs-backend-wasm's heap, so a wasm tensor is multiplied in place without a copy.
//
// The BLAS library is opened with dlopen when `open()` is called, never linked: the addon
// builds on machines without BLAS headers, and a missing library is an error message, not a
// crash at load time.
#include <dlfcn.h>
#include <math.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
typedef int (*get_threads_fn)(void);
typedef char *(*get_config_fn)(void);

static void *lib = NULL;
static char lib_name[512] = "";
static sgemm_fn p_sgemm = NULL;
static set_threads_fn p_set_threads = NULL;
static get_threads_fn p_get_threads = NULL;
static get_config_fn p_get_config = NULL;

enum { CblasRowMajor = 101, CblasNoTrans = 111, CblasTrans = 112 };

#define CHECK(call)                                                                                                    \
  do {                                                                                                                 \
    if ((call) != napi_ok) {                                                                                           \
      napi_throw_error(env, NULL, "midtrain-blas: Node-API call failed: " #call);                                      \
      return NULL;                                                                                                     \
    }                                                                                                                  \
  } while (0)

static napi_value str(napi_env env, const char *s) {
  napi_value v;
  napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &v);
  return v;
}

// open(path | undefined) -> null on success, else an error message (string).
// Without a path, tries the usual OpenBLAS names, then the system's libblas / Accelerate.
static napi_value open_lib(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (lib) return NULL;
  char path[512] = "";
  napi_valuetype t = napi_undefined;
  if (argc >= 1) napi_typeof(env, argv[0], &t);
  if (t == napi_string) {
    size_t n, full;
    CHECK(napi_get_value_string_utf8(env, argv[0], NULL, 0, &full));
    if (full >= sizeof path) return str(env, "the BLAS library path is longer than 511 bytes");
    CHECK(napi_get_value_string_utf8(env, argv[0], path, sizeof path, &n));
  }
  // OpenBLAS first, then Apple's Accelerate. The generic libblas.so.3 is left out on purpose: it is
  // often the reference BLAS, slower than tfjs's own XNNPACK (name it in MIDTRAIN_BLAS_LIB to use it).
  const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libopenblas.dylib",
                         "/opt/homebrew/opt/openblas/lib/libopenblas.dylib",
                         "/usr/local/opt/openblas/lib/libopenblas.dylib",
                         "/System/Library/Frameworks/Accelerate.framework/Accelerate"};
  char errors[2048] = "";
  if (path[0]) {
    lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (lib) snprintf(lib_name, sizeof lib_name, "%s", path);
    else snprintf(errors, sizeof errors, "%s", dlerror());
  } else {
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !lib; i++) {
      lib = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
      if (lib) snprintf(lib_name, sizeof lib_name, "%s", names[i]);
    }
    if (!lib) {
      size_t used = (size_t)snprintf(errors, sizeof errors, "none of");
      for (size_t i = 0; i < sizeof names / sizeof names[0] && used < sizeof errors; i++)
        used += (size_t)snprintf(errors + used, sizeof errors - used, "%s %s", i ? "," : "", names[i]);
      if (used < sizeof errors) snprintf(errors + used, sizeof errors - used, " could be opened");
    }
  }
  if (!lib) return str(env, errors);
  p_sgemm = (sgemm_fn)dlsym(lib, "cblas_sgemm");
  if (!p_sgemm) {
    dlclose(lib);
    lib = NULL;
    char msg[700];
    snprintf(msg, sizeof msg, "%s has no cblas_sgemm symbol (not a CBLAS library)", lib_name);
    return str(env, msg);
  }
  p_set_threads = (set_threads_fn)dlsym(lib, "openblas_set_num_threads");
  p_get_threads = (get_threads_fn)dlsym(lib, "openblas_get_num_threads");
  p_get_config = (get_config_fn)dlsym(lib, "openblas_get_config");
  return NULL;
}

static int f32(napi_env env, napi_value v, const char *what, float **data, size_t *len) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &offset) != napi_ok || type != napi_float32_array) {
    char msg[120];
    snprintf(msg, sizeof msg, "midtrain-blas: %s must be a Float32Array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *data = (float *)p;
  return 1;
}

static int i64(napi_env env, napi_value v, const char *what, int64_t min, int64_t *out) {
  double d;
  // Read as a double so NaN, infinities and fractions are refused instead of becoming 0 or truncated.
  int ok = napi_get_value_double(env, v, &d) == napi_ok && d == floor(d) && d >= (double)min && d <= (double)INT32_MAX;
  if (ok) *out = (int64_t)d;
  if (!ok) {
    char msg[120];
    snprintf(msg, sizeof msg, "midtrain-blas: %s must be an integer in [%lld, 2^31)", what, (long long)min);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

// Elements an operand must hold: `batch` slices `stride` apart, each rows*cols.
static int fits(napi_env env, const char *what, size_t len, int64_t batch, int64_t stride, int64_t size) {
  int64_t need = batch == 0 || size == 0 ? 0 : (batch - 1) * stride + size;
  if ((int64_t)len < need) {
    char msg[160];
    snprintf(msg, sizeof msg, "midtrain-blas: %s holds %lld floats, the product needs %lld", what, (long long)len,
             (long long)need);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

// sgemmBatch(batch, transA, transB, M, N, K, A, strideA, B, strideB, C, strideC)
// For i < batch: C[i] = op(A[i]) · op(B[i]), row-major, op = transpose when the flag is set.
// A[i] starts at A + i*strideA (stride 0 broadcasts one matrix), likewise B and C.
static napi_value sgemm_batch(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (!p_sgemm) {
    napi_throw_error(env, NULL, "midtrain-blas: no BLAS library open (call open() first)");
    return NULL;
  }
  if (argc != 12) {
    napi_throw_type_error(env, NULL, "midtrain-blas: sgemmBatch takes 12 arguments");
    return NULL;
  }
  int64_t batch, M, N, K, sA, sB, sC;
  bool ta = false, tb = false;
  if (!i64(env, argv[0], "batch", 0, &batch)) return NULL;
  CHECK(napi_get_value_bool(env, argv[1], &ta));
  CHECK(napi_get_value_bool(env, argv[2], &tb));
  if (!i64(env, argv[3], "M", 0, &M) || !i64(env, argv[4], "N", 0, &N) || !i64(env, argv[5], "K", 0, &K)) return NULL;
  float *A, *B, *C;
  size_t nA, nB, nC;
  if (!f32(env, argv[6], "A", &A, &nA) || !i64(env, argv[7], "strideA", 0, &sA)) return NULL;
  if (!f32(env, argv[8], "B", &B, &nB) || !i64(env, argv[9], "strideB", 0, &sB)) return NULL;
  if (!f32(env, argv[10], "C", &C, &nC) || !i64(env, argv[11], "strideC", 0, &sC)) return NULL;
  if (!fits(env, "A", nA, batch, sA, M * K) || !fits(env, "B", nB, batch, sB, K * N) ||
      !fits(env, "C", nC, batch, sC, M * N))
    return NULL;
  if (batch > 1 && sC < M * N) {
    napi_throw_range_error(env, NULL, "midtrain-blas: strideC must be at least M*N (outputs may not overlap)");
    return NULL;
  }
  if (M == 0 || N == 0) return NULL;
  if (K == 0) {
    for (int64_t i = 0; i < batch; i++) memset(C + i * sC, 0, sizeof(float) * M * N);
    return NULL;
  }
  int lda = ta ? (int)M : (int)K, ldb = tb ? (int)K : (int)N;
  for (int64_t i = 0; i < batch; i++)
    p_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, (int)M, (int)N, (int)K,
            1.0f, A + i * sA, lda, B + i * sB, ldb, 0.0f, C + i * sC, (int)N);
  return NULL;
}

// exp(x) for float, written so that the compiler can vectorize the loops that call it (libm's
// expf/erff are scalar calls): range reduction x = n·ln2 + r, |r| ≤ ln2/2, a degree-6 polynomial
// for e^r (relative error about 1e-7), 2^n through the exponent bits. 0 below ln(FLT_MIN)
// (−87.34, where the result would be subnormal), +inf above 88.38; NaN stays NaN.
static inline float exp_approx(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  const float t = xc * 1.44269504088896341f;
  const int32_t ni = (int32_t)(t + (t >= 0.0f ? 0.5f : -0.5f));
  const float n = (float)ni;
  float r = xc - n * 0.693359375f;
  r = r + n * 2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  p = p * r * r + r + 1.0f;
  const uint32_t bits = (uint32_t)(ni + 127) << 23;
  float scale;
  memcpy(&scale, &bits, sizeof scale);
  // x NaN: p is NaN, so the product is NaN whatever the exponent bits are.
  const float y = p * scale;
  return x < lo ? 0.0f : y;
}

// erf(z) given e = exp(−z²) (Abramowitz & Stegun 7.1.26, absolute error ≤ 1.5e-7, the same
// approximation tfjs uses for its erf).
static inline float erf_with_exp(float z, float e) {
  const float az = z < 0.0f ? -z : z;
  const float t = 1.0f / (1.0f + 0.3275911f * az);
  const float poly = t * (0.254829592f + t * (-0.284496736f + t * (1.421413741f + t * (-1.453152027f + t * 1.061405429f))));
  const float v = 1.0f - poly * e;
  return z < 0.0f ? -v : v;
}

static int i32arr(napi_env env, napi_value v, const char *what, int32_t **data, size_t *len) {
  napi_typedarray_type type;
  size_t offset;
  napi_value ab;
  void *p;
  if (napi_get_typedarray_info(env, v, &type, len, &p, &ab, &offset) != napi_ok || type != napi_int32_array) {
    char msg[120];
    snprintf(msg, sizeof msg, "midtrain-blas: %s must be an Int32Array", what);
    napi_throw_type_error(env, NULL, msg);
    return 0;
  }
  *data = (int32_t *)p;
  return 1;
}

// Shared argument checks of the two cross-entropy functions: logits [N, V], targets [N] in [0, V).
static int xent_args(napi_env env, napi_value *argv, int64_t *N, int64_t *V, float **z, int32_t **t) {
  size_t nz, nt;
  if (!i64(env, argv[0], "N", 0, N) || !i64(env, argv[1], "V", 1, V)) return 0;
  if (!f32(env, argv[2], "logits", z, &nz) || !i32arr(env, argv[3], "targets", t, &nt)) return 0;
  if (!fits(env, "logits", nz, 1, 0, *N * *V) || !fits(env, "targets", nt, 1, 0, *N)) return 0;
  for (int64_t i = 0; i < *N; i++) {
    if ((*t)[i] < 0 || (*t)[i] >= *V) {
      char msg[160];
      snprintf(msg, sizeof msg, "midtrain-blas: target %d at row %lld is outside the vocabulary [0, %lld)", (*t)[i],
               (long long)i, (long long)*V);
      napi_throw_range_error(env, NULL, msg);
      return 0;
    }
  }
  return 1;
}

// xentForward(N, V, logits, targets, nll, lse): per row i, lse[i] = log Σ_j exp(z[i,j]) and
// nll[i] = lse[i] − z[i, t[i]]. NaN logits give NaN (never hidden by the max).
static napi_value xent_forward(napi_env env, napi_callback_info info) {
  size_t argc = 6;
  napi_value argv[6];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 6) {
    napi_throw_type_error(env, NULL, "midtrain-blas: xentForward takes 6 arguments");
    return NULL;
  }
  int64_t N, V;
  float *z, *nll, *lse;
  int32_t *t;
  size_t n1, n2;
  if (!xent_args(env, argv, &N, &V, &z, &t)) return NULL;
  if (!f32(env, argv[4], "nll", &nll, &n1) || !f32(env, argv[5], "lse", &lse, &n2)) return NULL;
  if (!fits(env, "nll", n1, 1, 0, N) || !fits(env, "lse", n2, 1, 0, N)) return NULL;
  float *scratch = malloc(sizeof(float) * (size_t)V);
  if (!scratch) {
    napi_throw_error(env, NULL, "midtrain-blas: out of memory in xentForward");
    return NULL;
  }
  for (int64_t i = 0; i < N; i++) {
    const float *row = z + i * V;
    float m = row[0];
    for (int64_t j = 1; j < V; j++) m = row[j] > m ? row[j] : m;
    if (isinf(m)) m = 0.0f;  // all −inf (or +inf) rows: let the sum produce inf/NaN as usual
    // exp into the scratch row (a vectorizable loop), then a double sum.
    for (int64_t j = 0; j < V; j++) scratch[j] = exp_approx(row[j] - m);
    double s = 0.0;
    for (int64_t j = 0; j < V; j++) s += scratch[j];
    float l = m + (float)log(s);
    lse[i] = l;
    nll[i] = l - row[t[i]];
  }
  free(scratch);
  return NULL;
}

// xentBackward(N, V, logits, targets, lse, dy, dlogits): dlogits[i,j] = dy[i]·(exp(z[i,j] − lse[i]) − [j = t[i]]).
static napi_value xent_backward(napi_env env, napi_callback_info info) {
  size_t argc = 7;
  napi_value argv[7];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 7) {
    napi_throw_type_error(env, NULL, "midtrain-blas: xentBackward takes 7 arguments");
    return NULL;
  }
  int64_t N, V;
  float *z, *lse, *dy, *out;
  int32_t *t;
  size_t n1, n2, n3;
  if (!xent_args(env, argv, &N, &V, &z, &t)) return NULL;
  if (!f32(env, argv[4], "lse", &lse, &n1) || !f32(env, argv[5], "dy", &dy, &n2) ||
      !f32(env, argv[6], "dlogits", &out, &n3))
    return NULL;
  if (!fits(env, "lse", n1, 1, 0, N) || !fits(env, "dy", n2, 1, 0, N) || !fits(env, "dlogits", n3, 1, 0, N * V))
    return NULL;
  for (int64_t i = 0; i < N; i++) {
    const float *row = z + i * V;
    float *o = out + i * V;
    const float l = lse[i], g = dy[i];
    for (int64_t j = 0; j < V; j++) o[j] = exp_approx(row[j] - l) * g;
    o[t[i]] -= g;
  }
  return NULL;
}

// Reads `count` Float32Array arguments that must all hold at least `n` floats.
static int f32_all(napi_env env, napi_value *argv, const char **names, int count, int64_t n, float **out) {
  for (int i = 0; i < count; i++) {
    size_t len;
    if (!f32(env, argv[i], names[i], &out[i], &len) || !fits(env, names[i], len, 1, 0, n)) return 0;
  }
  return 1;
}

#define GELU_K 0.70710678118654752440f /* 1/sqrt(2) */
#define GELU_D 0.39894228040143267794f /* 1/sqrt(2 pi) */

// geluForward(n, x, y): y = x·Φ(x) = 0.5·x·(1 + erf(x/√2)) (exact GELU).
static napi_value gelu_forward(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t n;
  float *a[2];
  const char *names[] = {"x", "y"};
  if (argc != 3 || !i64(env, argv[0], "n", 0, &n) || !f32_all(env, argv + 1, names, 2, n, a)) {
    if (argc != 3) napi_throw_type_error(env, NULL, "midtrain-blas: geluForward takes 3 arguments");
    return NULL;
  }
  const float *x = a[0];
  float *y = a[1];
  for (int64_t i = 0; i < n; i++) {
    const float xi = x[i];
    y[i] = 0.5f * xi * (1.0f + erf_with_exp(xi * GELU_K, exp_approx(-0.5f * xi * xi)));
  }
  return NULL;
}

// geluBackward(n, x, dy, dx): dx = dy·(Φ(x) + x·φ(x)).
static napi_value gelu_backward(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t n;
  float *a[3];
  const char *names[] = {"x", "dy", "dx"};
  if (argc != 4 || !i64(env, argv[0], "n", 0, &n) || !f32_all(env, argv + 1, names, 3, n, a)) {
    if (argc != 4) napi_throw_type_error(env, NULL, "midtrain-blas: geluBackward takes 4 arguments");
    return NULL;
  }
  const float *x = a[0], *dy = a[1];
  float *dx = a[2];
  for (int64_t i = 0; i < n; i++) {
    const float xi = x[i];
    const float e = exp_approx(-0.5f * xi * xi);
    dx[i] = dy[i] * (0.5f * (1.0f + erf_with_exp(xi * GELU_K, e)) + xi * GELU_D * e);
  }
  return NULL;
}

// adamw(n, p, g, m, v, P, M, V, beta1, beta2, eps, decay, stepSize, sqrtBc2): one AdamW step,
//   M = β1·m + (1−β1)·g;  V = β2·v + (1−β2)·g²;  P = decay·p − stepSize·M / (√V / sqrtBc2 + eps).
static napi_value adamw(napi_env env, napi_callback_info info) {
  size_t argc = 14;
  napi_value argv[14];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 14) {
    napi_throw_type_error(env, NULL, "midtrain-blas: adamw takes 14 arguments");
    return NULL;
  }
  int64_t n;
  float *a[7];
  const char *names[] = {"p", "g", "m", "v", "P", "M", "V"};
  if (!i64(env, argv[0], "n", 0, &n) || !f32_all(env, argv + 1, names, 7, n, a)) return NULL;
  double h[6];
  for (int i = 0; i < 6; i++) CHECK(napi_get_value_double(env, argv[8 + i], &h[i]));
  // Double arithmetic, float32 moments: the same rounding as the JavaScript loop of the kernel.
  const double b1 = h[0], b2 = h[1], c1 = 1.0 - h[0], c2 = 1.0 - h[1];
  const double eps = h[2], decay = h[3], step = h[4], sqrtBc2 = h[5];
  const float *p = a[0], *g = a[1], *m = a[2], *v = a[3];
  float *P = a[4], *M = a[5], *V = a[6];
  for (int64_t i = 0; i < n; i++) {
    const double gi = g[i];
    const float mi = (float)(m[i] * b1 + gi * c1);
    const float vi = (float)(v[i] * b2 + gi * gi * c2);
    M[i] = mi;
    V[i] = vi;
    P[i] = (float)(p[i] * decay - (mi / (sqrt((double)vi) / sqrtBc2 + eps)) * step);
  }
  return NULL;
}

// layerNormForward(R, C, x, gamma, beta, eps, y, mean, rstd): per row r,
//   mean[r] = avg(x[r]), rstd[r] = 1/sqrt(avg((x[r] − mean)²) + eps), y = (x − mean)·rstd·gamma + beta.
static napi_value layer_norm_forward(napi_env env, napi_callback_info info) {
  size_t argc = 9;
  napi_value argv[9];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 9) {
    napi_throw_type_error(env, NULL, "midtrain-blas: layerNormForward takes 9 arguments");
    return NULL;
  }
  int64_t R, C;
  double eps;
  float *x, *gamma, *beta, *y, *mean, *rstd;
  const char *n1[] = {"x"}, *n2[] = {"gamma", "beta"}, *n3[] = {"y"}, *n4[] = {"mean", "rstd"};
  float *a2[2], *a4[2];
  if (!i64(env, argv[0], "R", 0, &R) || !i64(env, argv[1], "C", 1, &C)) return NULL;
  if (!f32_all(env, argv + 2, n1, 1, R * C, &x) || !f32_all(env, argv + 3, n2, 2, C, a2)) return NULL;
  CHECK(napi_get_value_double(env, argv[5], &eps));
  if (!f32_all(env, argv + 6, n3, 1, R * C, &y) || !f32_all(env, argv + 7, n4, 2, R, a4)) return NULL;
  gamma = a2[0];
  beta = a2[1];
  mean = a4[0];
  rstd = a4[1];
  for (int64_t r = 0; r < R; r++) {
    const float *xr = x + r * C;
    float *yr = y + r * C;
    double s = 0.0;
    for (int64_t c = 0; c < C; c++) s += xr[c];
    const double mu = s / (double)C;
    double q = 0.0;
    for (int64_t c = 0; c < C; c++) {
      const double d = xr[c] - mu;
      q += d * d;
    }
    const float rs = (float)(1.0 / sqrt(q / (double)C + eps));
    const float m = (float)mu;
    mean[r] = m;
    rstd[r] = rs;
    for (int64_t c = 0; c < C; c++) yr[c] = (xr[c] - m) * rs * gamma[c] + beta[c];
  }
  return NULL;
}

// layerNormBackward(R, C, x, gamma, mean, rstd, dy, dx, dgamma, dbeta): with x̂ = (x − mean)·rstd
// and g = dy·gamma, dx = rstd·(g − avg(g) − x̂·avg(g·x̂)); dgamma = Σ_r dy·x̂; dbeta = Σ_r dy.
static napi_value layer_norm_backward(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) {
    napi_throw_type_error(env, NULL, "midtrain-blas: layerNormBackward takes 10 arguments");
    return NULL;
  }
  int64_t R, C;
  float *x, *gamma, *mean, *rstd, *dy, *dx, *dgamma, *dbeta;
  const char *nx[] = {"x"}, *ng[] = {"gamma"}, *nm[] = {"mean", "rstd"}, *nd[] = {"dy", "dx"},
             *np[] = {"dgamma", "dbeta"};
  float *am[2], *ad[2], *ap[2];
  if (!i64(env, argv[0], "R", 0, &R) || !i64(env, argv[1], "C", 1, &C)) return NULL;
  if (!f32_all(env, argv + 2, nx, 1, R * C, &x) || !f32_all(env, argv + 3, ng, 1, C, &gamma) ||
      !f32_all(env, argv + 4, nm, 2, R, am) || !f32_all(env, argv + 6, nd, 2, R * C, ad) ||
      !f32_all(env, argv + 8, np, 2, C, ap))
    return NULL;
  mean = am[0];
  rstd = am[1];
  dy = ad[0];
  dx = ad[1];
  dgamma = ap[0];
  dbeta = ap[1];
  // Parameter gradients sum over every row (thousands): accumulate in double.
  double *acc = calloc((size_t)(2 * C), sizeof(double));
  if (!acc) {
    napi_throw_error(env, NULL, "midtrain-blas: out of memory in layerNormBackward");
    return NULL;
  }
  for (int64_t r = 0; r < R; r++) {
    const float *xr = x + r * C, *dyr = dy + r * C;
    float *dxr = dx + r * C;
    const float m = mean[r], rs = rstd[r];
    double sg = 0.0, sgx = 0.0;
    for (int64_t c = 0; c < C; c++) {
      const float xh = (xr[c] - m) * rs;
      const float g = dyr[c] * gamma[c];
      sg += g;
      sgx += (double)g * xh;
      acc[c] += (double)dyr[c] * xh;
      acc[C + c] += dyr[c];
    }
    const float mg = (float)(sg / (double)C), mgx = (float)(sgx / (double)C);
    for (int64_t c = 0; c < C; c++) {
      const float xh = (xr[c] - m) * rs;
      dxr[c] = rs * (dyr[c] * gamma[c] - mg - xh * mgx);
    }
  }
  for (int64_t c = 0; c < C; c++) {
    dgamma[c] = (float)acc[c];
    dbeta[c] = (float)acc[C + c];
  }
  free(acc);
  return NULL;
}

// rotary(R, T, D, headDim, half, x, cos, sin, out, grad): rotate-half rotary embedding on R rows
// of D = heads·headDim, row r at position t = r mod T, the first 2·half dims of each head rotated:
//   forward: out[r, j] = x[r, j]·cos[t, j] + x[r, pair(j)]·sin[t, j]
//   grad:    out[r, j] = x[r, j]·cos[t, j] + x[r, pair(j)]·sin[t, pair(j)]   (x = dy)
// where pair swaps dim i and i + half inside a head (i < half); other dims have pair(j) = none.
static napi_value rotary(napi_env env, napi_callback_info info) {
  size_t argc = 10;
  napi_value argv[10];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  if (argc != 10) {
    napi_throw_type_error(env, NULL, "midtrain-blas: rotary takes 10 arguments");
    return NULL;
  }
  int64_t R, T, D, hd, half;
  bool grad = false;
  if (!i64(env, argv[0], "R", 0, &R) || !i64(env, argv[1], "T", 1, &T) || !i64(env, argv[2], "D", 1, &D) ||
      !i64(env, argv[3], "headDim", 1, &hd) || !i64(env, argv[4], "half", 0, &half))
    return NULL;
  if (D % hd != 0 || 2 * half > hd) {
    napi_throw_range_error(env, NULL, "midtrain-blas: rotary needs D a multiple of headDim and 2*half <= headDim");
    return NULL;
  }
  float *xa[1], *tabs[2], *oa[1];
  const char *nx[] = {"x"}, *nt[] = {"cos", "sin"}, *no[] = {"out"};
  if (!f32_all(env, argv + 5, nx, 1, R * D, xa) || !f32_all(env, argv + 6, nt, 2, T * D, tabs) ||
      !f32_all(env, argv + 8, no, 1, R * D, oa))
    return NULL;
  CHECK(napi_get_value_bool(env, argv[9], &grad));
  const float *x = xa[0], *cs = tabs[0], *sn = tabs[1];
  float *out = oa[0];
  if (out == x) {
    napi_throw_range_error(env, NULL, "midtrain-blas: rotary cannot work in place (out must not alias x)");
    return NULL;
  }
  for (int64_t r = 0; r < R; r++) {
    const int64_t t = r % T;
    const float *xr = x + r * D, *c = cs + t * D, *s = sn + t * D;
    float *o = out + r * D;
    for (int64_t h = 0; h < D; h += hd) {
      for (int64_t i = 0; i < half; i++) {
        const int64_t a = h + i, b = a + half;
        o[a] = xr[a] * c[a] + xr[b] * (grad ? s[b] : s[a]);
        o[b] = xr[b] * c[b] + xr[a] * (grad ? s[a] : s[b]);
      }
      for (int64_t j = h + 2 * half; j < h + hd; j++) o[j] = xr[j] * c[j];
    }
  }
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t n;
  if (argc < 1 || !i64(env, argv[0], "threads", 1, &n)) return NULL;
  if (p_set_threads) p_set_threads((int)n);
  return NULL;
}

// info() -> { library, threads (-1 when the library cannot say), config }
static napi_value get_info(napi_env env, napi_callback_info info) {
  (void)info;
  napi_value o, v;
  CHECK(napi_create_object(env, &o));
  CHECK(napi_set_named_property(env, o, "library", str(env, lib_name)));
  CHECK(napi_create_int32(env, p_get_threads ? p_get_threads() : -1, &v));
  CHECK(napi_set_named_property(env, o, "threads", v));
  CHECK(napi_set_named_property(env, o, "config", str(env, p_get_config ? p_get_config() : "")));
  return o;
}

NAPI_MODULE_INIT() {
  struct {
    const char *name;
    napi_callback fn;
  } fns[] = {{"open", open_lib},         {"sgemmBatch", sgemm_batch}, {"setThreads", set_threads},
               {"info", get_info},         {"xentForward", xent_forward}, {"xentBackward", xent_backward},
               {"geluForward", gelu_forward}, {"geluBackward", gelu_backward}, {"adamw", adamw},
               {"layerNormForward", layer_norm_forward}, {"layerNormBackward", layer_norm_backward},
               {"rotary", rotary}};
  for (size_t i = 0; i < sizeof fns / sizeof fns[0]; i++) {
    napi_value f;
    if (napi_create_function(env, fns[i].name, NAPI_AUTO_LENGTH, fns[i].fn, NULL, &f) != napi_ok ||
        napi_set_named_property(env, exports, fns[i].name, f) != napi_ok)
      return NULL;
  }
  return exports;
}
