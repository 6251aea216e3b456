// Node-API addon: OpenBLAS sgemm on Float32Array views (zero-copy; the views may point into
// tfjs-backend-wasm's heap). Bench prototype of the "native addon on OpenBLAS" route.
// Build: sh bench/native/build.sh (gcc, Node headers, libopenblas.so.0 at run time via dlopen).
#include <dlfcn.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>

typedef void (*sgemm_fn)(int order, int ta, int tb, int m, int n, int k, float alpha, const float *a, int lda,
                         const float *b, int ldb, float beta, float *c, int ldc);
typedef void (*set_threads_fn)(int);
static sgemm_fn cblas_sgemm_p = NULL;
static set_threads_fn set_threads_p = NULL;

enum { RowMajor = 101, NoTrans = 111, Trans = 112 };

static float *f32(napi_env env, napi_value v, size_t *len) {
  napi_typedarray_type type;
  size_t length, offset;
  void *data;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, &ab, &offset) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "expected a Float32Array");
    return NULL;
  }
  if (len) *len = length;
  return (float *)data;
}

static int64_t i64(napi_env env, napi_value v) {
  int64_t x = 0;
  napi_get_value_int64(env, v, &x);
  return x;
}

// sgemmBatch(batch, transA, transB, M, N, K, A, strideA, B, strideB, C, strideC)
// C[i] = op(A[i]) op(B[i]) for i < batch, row-major; strides in elements (0 = broadcast).
static napi_value sgemm_batch(napi_env env, napi_callback_info info) {
  size_t argc = 12;
  napi_value argv[12];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (argc != 12) {
    napi_throw_error(env, NULL, "sgemmBatch needs 12 arguments");
    return NULL;
  }
  int64_t batch = i64(env, argv[0]);
  bool ta, tb;
  napi_get_value_bool(env, argv[1], &ta);
  napi_get_value_bool(env, argv[2], &tb);
  int64_t M = i64(env, argv[3]), N = i64(env, argv[4]), K = i64(env, argv[5]);
  float *A = f32(env, argv[6], NULL);
  int64_t sA = i64(env, argv[7]);
  float *B = f32(env, argv[8], NULL);
  int64_t sB = i64(env, argv[9]);
  float *C = f32(env, argv[10], NULL);
  int64_t sC = i64(env, argv[11]);
  if (!A || !B || !C) return NULL;
  int lda = ta ? M : K, ldb = tb ? K : N;
  for (int64_t i = 0; i < batch; i++)
    cblas_sgemm_p(RowMajor, ta ? Trans : NoTrans, tb ? Trans : NoTrans, (int)M, (int)N, (int)K, 1.0f, A + i * sA, lda,
                  B + i * sB, ldb, 0.0f, C + i * sC, (int)N);
  return NULL;
}

static napi_value set_threads(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  if (set_threads_p) set_threads_p((int)i64(env, argv[0]));
  return NULL;
}

NAPI_MODULE_INIT() {
  const char *names[] = {"libopenblas.so.0", "libopenblas.so", "libblas.so.3"};
  void *h = NULL;
  for (int i = 0; i < 3 && !h; i++) h = dlopen(names[i], RTLD_NOW | RTLD_LOCAL);
  if (!h) {
    napi_throw_error(env, NULL, "libopenblas.so.0 not found (install libopenblas0-pthread)");
    return NULL;
  }
  cblas_sgemm_p = (sgemm_fn)dlsym(h, "cblas_sgemm");
  set_threads_p = (set_threads_fn)dlsym(h, "openblas_set_num_threads");
  if (!cblas_sgemm_p) {
    napi_throw_error(env, NULL, "cblas_sgemm not found in the BLAS library");
    return NULL;
  }
  napi_value fn;
  napi_create_function(env, "sgemmBatch", NAPI_AUTO_LENGTH, sgemm_batch, NULL, &fn);
  napi_set_named_property(env, exports, "sgemmBatch", fn);
  napi_create_function(env, "setThreads", NAPI_AUTO_LENGTH, set_threads, NULL, &fn);
  napi_set_named_property(env, exports, "setThreads", fn);
  return exports;
}
