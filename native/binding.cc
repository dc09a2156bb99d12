// N-API entry points of the native kernels. Picks the best kernel table the CPU supports at load time
// (AVX-512, AVX2+FMA, portable), validates every buffer extent before handing raw pointers to the
// kernels (a wrong argument throws a RangeError instead of corrupting memory), and exposes a few
// controls for tests and benchmarks (setIsa, setThreads, info).
#include <node_api.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common.h"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

using ldm::idx_t;
using ldm::KernelTable;

namespace {

const KernelTable* active = nullptr;

const KernelTable* tableByName(const char* name) {
  if (!std::strcmp(name, "avx512")) return ldm_table_avx512();
  if (!std::strcmp(name, "avx2")) return ldm_table_avx2();
  if (!std::strcmp(name, "base") || !std::strcmp(name, "sse2") || !std::strcmp(name, "scalar")) return ldm_table_base();
  return nullptr;
}

bool cpuHas(const char* what) {
#if (defined(__x86_64__) || defined(__i386__)) && defined(__GNUC__)
  __builtin_cpu_init();
  if (!std::strcmp(what, "avx512"))
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
           __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("fma");
  if (!std::strcmp(what, "avx2")) return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
  (void)what;
  return false;
}

const KernelTable* pickTable() {
  if (cpuHas("avx512") && ldm_table_avx512()) return ldm_table_avx512();
  if (cpuHas("avx2") && ldm_table_avx2()) return ldm_table_avx2();
  return ldm_table_base();
}

bool supported(const KernelTable* t) {
  if (!t) return false;
  if (t == ldm_table_avx512()) return cpuHas("avx512");
  if (t == ldm_table_avx2()) return cpuHas("avx2");
  return true;
}

// ---- argument helpers ------------------------------------------------------------------------------

constexpr size_t kMaxArgs = 24;

// Each kernel export's argument count, from the kernel list.
namespace nargs {
#define LDM_KERNEL_NARGS(name, jsArgs, params) \
  constexpr size_t name = jsArgs;             \
  static_assert(jsArgs <= kMaxArgs, #name ": too many arguments for Args");
LDM_KERNELS(LDM_KERNEL_NARGS)
#undef LDM_KERNEL_NARGS
}  // namespace nargs

struct Args {
  napi_env env;
  napi_value argv[kMaxArgs];
  size_t argc = kMaxArgs;
  const char* fn;
  bool failed = false;

  // `needArgs`: fewer arguments throw a TypeError before any is read.
  Args(napi_env e, napi_callback_info info, const char* name, size_t needArgs = 0) : env(e), fn(name) {
    napi_get_cb_info(e, info, &argc, argv, nullptr, nullptr);
    need(needArgs);
  }
  void fail(const char* kind, const char* msg) {
    if (failed) return;
    failed = true;
    char buf[256];
    std::snprintf(buf, sizeof buf, "ldm native %s: %s", fn, msg);
    if (!std::strcmp(kind, "type")) napi_throw_type_error(env, nullptr, buf);
    else napi_throw_range_error(env, nullptr, buf);
  }
  double num(size_t i) {
    double v = 0;
    if (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok) fail("type", "expected a number argument");
    return v;
  }
  idx_t integer(size_t i) {
    double v = num(i);
    if (!failed && (v != std::floor(v) || std::fabs(v) > 9.0e15)) fail("range", "expected an integer argument");
    return (idx_t)v;
  }
  idx_t count(size_t i) {
    idx_t v = integer(i);
    if (!failed && v < 0) fail("range", "negative size");
    return v;
  }
  bool flag(size_t i) {
    bool b = false;
    if (i >= argc || napi_get_value_bool(env, argv[i], &b) != napi_ok) fail("type", "expected a boolean argument");
    return b;
  }
  bool isNull(size_t i) {
    napi_valuetype t;
    return i >= argc || (napi_typeof(env, argv[i], &t) == napi_ok && (t == napi_null || t == napi_undefined));
  }
  // A Float32Array argument: its data and length (in elements).
  float* f32(size_t i, idx_t* len) {
    bool is = false;
    if (i < argc) napi_is_typedarray(env, argv[i], &is);
    if (!is) {
      fail("type", "expected a Float32Array");
      *len = 0;
      return nullptr;
    }
    napi_typedarray_type type;
    size_t n = 0;
    void* data = nullptr;
    napi_get_typedarray_info(env, argv[i], &type, &n, &data, nullptr, nullptr);
    if (type != napi_float32_array) {
      fail("type", "expected a Float32Array");
      *len = 0;
      return nullptr;
    }
    *len = (idx_t)n;
    return static_cast<float*>(data);
  }
  // A Float32Array that must hold at least `need` elements (null allowed when optional).
  float* f32n(size_t i, idx_t need, bool optional = false) {
    if (optional && isNull(i)) return nullptr;
    idx_t len = 0;
    float* p = f32(i, &len);
    if (!failed && len < need) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "argument %zu holds %lld elements, needs %lld", i, (long long)len,
                    (long long)need);
      fail("range", msg);
    }
    return p;
  }
  // An Int32Array that must hold at least `need` elements.
  std::int32_t* i32n(size_t i, idx_t need) {
    bool is = false;
    if (i < argc) napi_is_typedarray(env, argv[i], &is);
    napi_typedarray_type type = napi_float32_array;
    size_t n = 0;
    void* data = nullptr;
    if (is) napi_get_typedarray_info(env, argv[i], &type, &n, &data, nullptr, nullptr);
    if (!is || type != napi_int32_array) {
      fail("type", "expected an Int32Array");
      return nullptr;
    }
    if ((idx_t)n < need) {
      char msg[160];
      std::snprintf(msg, sizeof msg, "argument %zu holds %lld elements, needs %lld", i, (long long)n, (long long)need);
      fail("range", msg);
    }
    return static_cast<std::int32_t*>(data);
  }
  // An array of integers (shape or strides).
  int intArray(size_t i, idx_t* out, int maxn) {
    bool is = false;
    if (i < argc) napi_is_array(env, argv[i], &is);
    if (!is) {
      fail("type", "expected an array of integers");
      return 0;
    }
    uint32_t n = 0;
    napi_get_array_length(env, argv[i], &n);
    if ((int)n > maxn) {
      fail("range", "too many dimensions");
      return 0;
    }
    for (uint32_t k = 0; k < n; k++) {
      napi_value e;
      double v = 0;
      napi_get_element(env, argv[i], k, &e);
      if (napi_get_value_double(env, e, &v) != napi_ok || v != std::floor(v)) {
        fail("type", "expected an array of integers");
        return 0;
      }
      out[k] = (idx_t)v;
    }
    return (int)n;
  }
  void need(size_t n) {
    if (argc < n) fail("type", "too few arguments");
  }
  // A number property of the object argument i (named in errors as argument.key).
  double prop(size_t i, const char* key) {
    napi_valuetype t = napi_undefined;
    if (i < argc) napi_typeof(env, argv[i], &t);
    if (t != napi_object) {
      fail("type", "expected an object argument");
      return 0;
    }
    napi_value v;
    double d = 0;
    if (napi_get_named_property(env, argv[i], key, &v) != napi_ok || napi_get_value_double(env, v, &d) != napi_ok) {
      char msg[96];
      std::snprintf(msg, sizeof msg, "argument %zu: expected a number %s", i, key);
      fail("type", msg);
    }
    return d;
  }
  idx_t propInteger(size_t i, const char* key, bool nonNegative) {
    double v = prop(i, key);
    if (failed) return 0;
    if (v != std::floor(v) || std::fabs(v) > 9.0e15 || (nonNegative && v < 0)) {
      char msg[96];
      std::snprintf(msg, sizeof msg, "argument %zu: %s must be a%s integer", i, key, nonNegative ? " non-negative" : "n");
      fail("range", msg);
    }
    return (idx_t)v;
  }
  // The convolution geometry object {N, C, H, W, O, kh, kw, sh, sw, padTop, padLeft, OH, OW}.
  ldm::ConvGeom convGeom(size_t i) {
    ldm::ConvGeom g;
    g.N = propInteger(i, "N", true), g.C = propInteger(i, "C", true), g.H = propInteger(i, "H", true);
    g.W = propInteger(i, "W", true), g.O = propInteger(i, "O", true), g.kh = propInteger(i, "kh", true);
    g.kw = propInteger(i, "kw", true), g.sh = propInteger(i, "sh", true), g.sw = propInteger(i, "sw", true);
    g.padTop = propInteger(i, "padTop", false), g.padLeft = propInteger(i, "padLeft", false);
    g.OH = propInteger(i, "OH", true), g.OW = propInteger(i, "OW", true);
    if (!failed && (g.sh < 1 || g.sw < 1)) fail("range", "stride must be at least 1");
    return g;
  }
  // The Adam step constants {beta1, beta2, eps, stepSize, bc2sqrt, l2, decay, sign}.
  ldm::AdamHyper adamHyper(size_t i) {
    ldm::AdamHyper h;
    h.beta1 = prop(i, "beta1"), h.beta2 = prop(i, "beta2"), h.eps = prop(i, "eps"), h.stepSize = prop(i, "stepSize");
    h.bc2sqrt = prop(i, "bc2sqrt"), h.l2 = prop(i, "l2"), h.decay = prop(i, "decay"), h.sign = prop(i, "sign");
    return h;
  }
};

#define LDM_ARGS(name) Args a(env, info, #name, nargs::name)

napi_value undef(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

// Checks offset + Σ (shape−1)·|stride| stays inside [0, len) for a strided view; returns the start pointer.
const float* stridedView(Args& a, size_t dataArg, size_t offArg, size_t strideArg, const idx_t* shape, int nd,
                         idx_t* strides) {
  idx_t len = 0;
  const float* p = a.f32(dataArg, &len);
  idx_t off = a.integer(offArg);
  int ns = a.intArray(strideArg, strides, 16);
  if (a.failed) return nullptr;
  if (ns != nd) {
    a.fail("range", "strides and shape differ in length");
    return nullptr;
  }
  idx_t lo = off, hi = off, total = 1;
  for (int d = 0; d < nd; d++) {
    total *= shape[d];
    if (shape[d] == 0) continue;
    idx_t span = (shape[d] - 1) * strides[d];
    if (span < 0) lo += span;
    else hi += span;
  }
  if (total > 0 && (lo < 0 || hi >= len)) {
    a.fail("range", "strided view reaches outside its buffer");
    return nullptr;
  }
  return p + off;
}

// ---- entry points --------------------------------------------------------------------------------

// gemm(transA, transB, M, N, K, alpha, A, aOff, lda, sA, B, bOff, ldb, sB, beta, C, cOff, ldc, sC, batch, bias | null
//      [, packedB | null]) — packedB: B's pack from gemmPackB for this K, N on the active kernel set (sB 0)
napi_value gemmEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(gemm);
  ldm::GemmArgs g;
  g.transA = a.flag(0);
  g.transB = a.flag(1);
  g.M = a.count(2);
  g.N = a.count(3);
  g.K = a.count(4);
  g.alpha = (float)a.num(5);
  idx_t lenA = 0, lenB = 0, lenC = 0;
  const float* A = a.f32(6, &lenA);
  idx_t aOff = a.count(7);
  g.lda = a.count(8);
  g.strideA = a.count(9);
  const float* B = a.f32(10, &lenB);
  idx_t bOff = a.count(11);
  g.ldb = a.count(12);
  g.strideB = a.count(13);
  g.beta = (float)a.num(14);
  float* C = a.f32(15, &lenC);
  idx_t cOff = a.count(16);
  g.ldc = a.count(17);
  g.strideC = a.count(18);
  g.batch = a.count(19);
  g.bias = a.f32n(20, g.N, true);
  if (!a.failed && !a.isNull(21)) {
    idx_t want[2] = {0, 0}, len = 0;
    active->gemmPackB(g.K, g.N, nullptr, 0, false, nullptr, want);
    const float* p = a.f32(21, &len);
    if (!a.failed && (len != want[0] || p[0] != (float)want[1] || g.strideB != 0)) {
      char msg[240];
      std::snprintf(msg, sizeof msg, "packedB (%lld floats, layout %.0f) does not fit this product (K %lld × N %lld "
                    "needs %lld floats, layout %lld, and a B shared by the batch): pack it with gemmPackB",
                    (long long)len, len > 0 ? (double)p[0] : 0.0, (long long)g.K, (long long)g.N, (long long)want[0],
                    (long long)want[1]);
      a.fail("range", msg);
    }
    g.packedB = p + ldm::PACK_HEADER;
  }
  if (a.failed) return nullptr;
  if (g.bias && (g.beta != 0.0f || (g.strideC == 0 && g.batch > 1))) {
    return a.fail("range", "a bias needs beta 0 and one C per batch entry"), nullptr;
  }
  if (g.M == 0 || g.N == 0 || g.batch == 0) return undef(env);
  auto last = [](idx_t off, idx_t batch, idx_t stride, idx_t rows, idx_t cols, idx_t ld) {
    return off + (batch - 1) * stride + (rows - 1) * ld + cols - 1;
  };
  if (g.K > 0) {
    idx_t ra = g.transA ? g.K : g.M, ca = g.transA ? g.M : g.K;
    idx_t rb = g.transB ? g.N : g.K, cb = g.transB ? g.K : g.N;
    if (g.lda < ca || g.ldb < cb) return a.fail("range", "leading dimension smaller than the row length"), nullptr;
    if (last(aOff, g.batch, g.strideA, ra, ca, g.lda) >= lenA) return a.fail("range", "A is too short"), nullptr;
    if (last(bOff, g.batch, g.strideB, rb, cb, g.ldb) >= lenB) return a.fail("range", "B is too short"), nullptr;
  }
  if (g.ldc < g.N) return a.fail("range", "ldc smaller than N"), nullptr;
  if (last(cOff, g.batch, g.strideC, g.M, g.N, g.ldc) >= lenC) return a.fail("range", "C is too short"), nullptr;
  g.A = A + aOff;
  g.B = B + bOff;
  g.C = C + cOff;
  active->gemm(g);
  return undef(env);
}

// unary(op, x, xOff, xStrides, out, shape, p, q)
napi_value unaryEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(unary);
  int op = (int)a.integer(0);
  idx_t shape[16], xs[16];
  int nd = a.intArray(5, shape, 16);
  if (a.failed) return nullptr;
  idx_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  const float* x = stridedView(a, 1, 2, 3, shape, nd, xs);
  float* out = a.f32n(4, n);
  float p = (float)a.num(6), q = (float)a.num(7);
  if (a.failed) return nullptr;
  if (op < 0 || op >= ldm::U_COUNT) return a.fail("range", "unknown op"), nullptr;
  if (n > 0) active->unary(op, p, q, x, xs, out, shape, nd);
  return undef(env);
}

// unaryBackward(op, x, y, g, out, p, q) — all contiguous, out.length elements
napi_value unaryBackwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(unaryBackward);
  int op = (int)a.integer(0);
  idx_t n = 0;
  float* out = a.f32(4, &n);
  const float* x = a.f32n(1, n);
  const float* y = a.f32n(2, n);
  const float* g = a.f32n(3, n);
  float p = (float)a.num(5), q = (float)a.num(6);
  if (a.failed) return nullptr;
  if (op < 0 || op >= ldm::U_COUNT) return a.fail("range", "unknown op"), nullptr;
  if (n > 0) active->unaryBackward(op, p, q, x, y, g, out, n);
  return undef(env);
}

// binary(op, a, aOff, aStrides, b, bOff, bStrides, out, shape)
napi_value binaryEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(binary);
  int op = (int)a.integer(0);
  idx_t shape[16], as[16], bs[16];
  int nd = a.intArray(8, shape, 16);
  if (a.failed) return nullptr;
  idx_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  const float* pa = stridedView(a, 1, 2, 3, shape, nd, as);
  const float* pb = stridedView(a, 4, 5, 6, shape, nd, bs);
  float* out = a.f32n(7, n);
  if (a.failed) return nullptr;
  if (op < 0 || op >= ldm::B_COUNT) return a.fail("range", "unknown op"), nullptr;
  if (n > 0) active->binary(op, pa, as, pb, bs, out, shape, nd);
  return undef(env);
}

// where(c, cOff, cStrides, a, aOff, aStrides, b, bOff, bStrides, out, shape)
napi_value whereEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(where);
  idx_t shape[16], cs[16], as[16], bs[16];
  int nd = a.intArray(10, shape, 16);
  if (a.failed) return nullptr;
  idx_t n = 1;
  for (int d = 0; d < nd; d++) n *= shape[d];
  const float* pc = stridedView(a, 0, 1, 2, shape, nd, cs);
  const float* pa = stridedView(a, 3, 4, 5, shape, nd, as);
  const float* pb = stridedView(a, 6, 7, 8, shape, nd, bs);
  float* out = a.f32n(9, n);
  if (a.failed) return nullptr;
  if (n > 0) active->where(pc, cs, pa, as, pb, bs, out, shape, nd);
  return undef(env);
}

// sum(x, outer, n, inner, out)
napi_value sumEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(sum);
  idx_t outer = a.count(1), n = a.count(2), inner = a.count(3);
  const float* x = a.f32n(0, outer * n * inner);
  float* out = a.f32n(4, outer * inner);
  if (a.failed) return nullptr;
  if (outer * inner > 0) active->sum(x, outer, n, inner, out);
  return undef(env);
}

// conv2dForward(geom, x, w, bias|null, out[, packed|null]) — geom = {N, C, H, W, O, kh, kw, sh, sw, padTop, padLeft,
// OH, OW}; packed: w's pack from conv2dPackWeights for this geometry, made by the active kernel set.
napi_value conv2dForwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(conv2dForward);
  const ldm::ConvGeom g = a.convGeom(0);
  if (a.failed) return nullptr;
  const float* x = a.f32n(1, g.N * g.C * g.H * g.W);
  const float* w = a.f32n(2, g.O * g.C * g.kh * g.kw);
  const float* bias = a.f32n(3, g.O, true);
  float* out = a.f32n(4, g.N * g.O * g.OH * g.OW);
  const float* packed = nullptr;
  if (!a.isNull(5)) {
    idx_t want[2] = {0, 0}, len = 0;
    active->conv2dPackWeights(g, nullptr, nullptr, want);
    packed = a.f32(5, &len);
    if (!a.failed && (want[0] == 0 || len != want[0] || packed[0] != (float)want[1])) {
      char msg[240];
      std::snprintf(msg, sizeof msg, "packed weights (%lld floats, layout %.0f) do not fit this convolution (it needs "
                    "%lld floats, layout %lld): pack them with conv2dPackWeights for this geometry and kernel set",
                    (long long)len, len > 0 ? (double)packed[0] : 0.0, (long long)want[0], (long long)want[1]);
      a.fail("range", msg);
    }
    packed += ldm::PACK_HEADER;
  }
  if (a.failed) return nullptr;
  if (g.N * g.O * g.OH * g.OW > 0) active->conv2dForward(g, x, w, bias, out, packed);
  return undef(env);
}

// [floats, layout] of a pack (the answer of conv2dPackWeights / gemmPackB without dst).
napi_value packInfo(napi_env env, const idx_t want[2]) {
  napi_value r, v;
  napi_create_array_with_length(env, 2, &r);
  for (uint32_t i = 0; i < 2; i++) {
    napi_create_double(env, (double)want[i], &v);
    napi_set_element(env, r, i, v);
  }
  return r;
}

// gemmPackB(K, N, B|null, bOff, ldb, transB, dst|null): without dst → [floats, layout] of op(B)'s pack (K × N) on
// the active kernel set; with B and dst (holding exactly that many floats) → writes it.
napi_value gemmPackBEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(gemmPackB);
  const idx_t K = a.count(0), N = a.count(1);
  if (a.failed) return nullptr;
  idx_t want[2] = {0, 0};
  active->gemmPackB(K, N, nullptr, 0, false, nullptr, want);
  if (a.isNull(6)) return packInfo(env, want);
  idx_t lenB = 0, len = 0;
  const float* B = a.f32(2, &lenB);
  const idx_t bOff = a.count(3), ldb = a.count(4);
  const bool transB = a.flag(5);
  float* dst = a.f32(6, &len);
  if (a.failed) return nullptr;
  const idx_t rows = transB ? N : K, cols = transB ? K : N;
  if (K > 0 && N > 0 && (ldb < cols || bOff + (rows - 1) * ldb + cols - 1 >= lenB)) return a.fail("range", "B is too short for K × N"), nullptr;
  if (len != want[0]) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "pack buffer holds %lld floats, needs %lld", (long long)len, (long long)want[0]);
    return a.fail("range", msg), nullptr;
  }
  active->gemmPackB(K, N, B + bOff, ldb, transB, dst, want);
  return undef(env);
}

// conv2dPackWeights(geom, w|null, dst|null): without dst → [floats, layout] of w's pack for this geometry's forward
// on the active kernel set (floats 0: no pack applies); with w and dst (holding exactly that many floats) → writes it.
napi_value conv2dPackWeightsEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(conv2dPackWeights);
  const ldm::ConvGeom g = a.convGeom(0);
  if (a.failed) return nullptr;
  idx_t want[2] = {0, 0};
  active->conv2dPackWeights(g, nullptr, nullptr, want);
  if (a.isNull(2)) return packInfo(env, want);
  const float* w = a.f32n(1, g.O * g.C * g.kh * g.kw);
  idx_t len = 0;
  float* dst = a.f32(2, &len);
  if (!a.failed && (want[0] == 0 || len != want[0])) {
    char msg[160];
    std::snprintf(msg, sizeof msg, "pack buffer holds %lld floats, this convolution's pack needs %lld", (long long)len,
                  (long long)want[0]);
    a.fail("range", msg);
  }
  if (a.failed) return nullptr;
  active->conv2dPackWeights(g, w, dst, want);
  return undef(env);
}

// conv2dBackwardInput(geom, gy, w, gx)
napi_value conv2dBackwardInputEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(conv2dBackwardInput);
  const ldm::ConvGeom g = a.convGeom(0);
  if (a.failed) return nullptr;
  const float* gy = a.f32n(1, g.N * g.O * g.OH * g.OW);
  const float* w = a.f32n(2, g.O * g.C * g.kh * g.kw);
  float* gx = a.f32n(3, g.N * g.C * g.H * g.W);
  if (a.failed) return nullptr;
  if (g.N * g.C * g.H * g.W > 0) active->conv2dBackwardInput(g, gy, w, gx);
  return undef(env);
}

// conv2dBackwardWeight(geom, x, gy, gw, gb|null)
napi_value conv2dBackwardWeightEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(conv2dBackwardWeight);
  const ldm::ConvGeom g = a.convGeom(0);
  if (a.failed) return nullptr;
  const float* x = a.f32n(1, g.N * g.C * g.H * g.W);
  const float* gy = a.f32n(2, g.N * g.O * g.OH * g.OW);
  float* gw = a.f32n(3, g.O * g.C * g.kh * g.kw);
  float* gb = a.f32n(4, g.O, true);
  if (a.failed) return nullptr;
  active->conv2dBackwardWeight(g, x, gy, gw, gb);
  return undef(env);
}

// groupNormForward(x, N, C, HW, G, eps, gamma|null, beta|null, silu, out, mean, rstd)
napi_value groupNormForwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(groupNormForward);
  idx_t N = a.count(1), C = a.count(2), HW = a.count(3), G = a.count(4);
  float eps = (float)a.num(5);
  bool silu = a.flag(8);
  if (a.failed) return nullptr;
  if (G < 1 || C % G != 0) return a.fail("range", "channels must divide into groups"), nullptr;
  const float* x = a.f32n(0, N * C * HW);
  const float* gamma = a.f32n(6, C, true);
  const float* beta = a.f32n(7, C, true);
  float* out = a.f32n(9, N * C * HW);
  float* mean = a.f32n(10, N * G);
  float* rstd = a.f32n(11, N * G);
  if (a.failed) return nullptr;
  active->groupNormForward(x, N, C, HW, G, eps, gamma, beta, silu, out, mean, rstd);
  return undef(env);
}

// groupNormBackward(x, gy, N, C, HW, G, gamma|null, beta|null, silu, mean, rstd, gx, ggamma|null, gbeta|null)
napi_value groupNormBackwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(groupNormBackward);
  idx_t N = a.count(2), C = a.count(3), HW = a.count(4), G = a.count(5);
  bool silu = a.flag(8);
  if (a.failed) return nullptr;
  if (G < 1 || C % G != 0) return a.fail("range", "channels must divide into groups"), nullptr;
  const float* x = a.f32n(0, N * C * HW);
  const float* gy = a.f32n(1, N * C * HW);
  const float* gamma = a.f32n(6, C, true);
  const float* beta = a.f32n(7, C, true);
  const float* mean = a.f32n(9, N * G);
  const float* rstd = a.f32n(10, N * G);
  float* gx = a.f32n(11, N * C * HW);
  float* ggamma = a.f32n(12, C, true);
  float* gbeta = a.f32n(13, C, true);
  if (a.failed) return nullptr;
  active->groupNormBackward(x, gy, N, C, HW, G, gamma, beta, silu, mean, rstd, gx, ggamma, gbeta);
  return undef(env);
}

// layerNormForward(x, rows, cols, eps, gamma|null, beta|null, out, mean, rstd)
napi_value layerNormForwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(layerNormForward);
  idx_t rows = a.count(1), cols = a.count(2);
  float eps = (float)a.num(3);
  const float* x = a.f32n(0, rows * cols);
  const float* gamma = a.f32n(4, cols, true);
  const float* beta = a.f32n(5, cols, true);
  float* out = a.f32n(6, rows * cols);
  float* mean = a.f32n(7, rows);
  float* rstd = a.f32n(8, rows);
  if (a.failed) return nullptr;
  active->layerNormForward(x, rows, cols, eps, gamma, beta, out, mean, rstd);
  return undef(env);
}

// layerNormBackward(x, gy, rows, cols, gamma|null, mean, rstd, gx, ggamma|null, gbeta|null)
napi_value layerNormBackwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(layerNormBackward);
  idx_t rows = a.count(2), cols = a.count(3);
  const float* x = a.f32n(0, rows * cols);
  const float* gy = a.f32n(1, rows * cols);
  const float* gamma = a.f32n(4, cols, true);
  const float* mean = a.f32n(5, rows);
  const float* rstd = a.f32n(6, rows);
  float* gx = a.f32n(7, rows * cols);
  float* ggamma = a.f32n(8, cols, true);
  float* gbeta = a.f32n(9, cols, true);
  if (a.failed) return nullptr;
  active->layerNormBackward(x, gy, rows, cols, gamma, mean, rstd, gx, ggamma, gbeta);
  return undef(env);
}

// softmaxForward(x, rows, cols, out, log)
napi_value softmaxForwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(softmaxForward);
  idx_t rows = a.count(1), cols = a.count(2);
  const float* x = a.f32n(0, rows * cols);
  float* out = a.f32n(3, rows * cols);
  bool lg = a.flag(4);
  if (a.failed) return nullptr;
  if (rows * cols > 0) active->softmaxForward(x, rows, cols, out, lg);
  return undef(env);
}

// softmaxBackward(y, gy, rows, cols, gx, log)
napi_value softmaxBackwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(softmaxBackward);
  idx_t rows = a.count(2), cols = a.count(3);
  const float* y = a.f32n(0, rows * cols);
  const float* gy = a.f32n(1, rows * cols);
  float* gx = a.f32n(4, rows * cols);
  bool lg = a.flag(5);
  if (a.failed) return nullptr;
  if (rows * cols > 0) active->softmaxBackward(y, gy, rows, cols, gx, lg);
  return undef(env);
}

// attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H): B = batch · H entries (see attention.inc)
napi_value attentionForwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(attentionForward);
  idx_t B = a.count(3), Lq = a.count(4), Lk = a.count(5), D = a.count(6), Dv = a.count(7);
  float scale = (float)a.num(8);
  const float* q = a.f32n(0, B * Lq * D);
  const float* k = a.f32n(1, B * Lk * D);
  const float* v = a.f32n(2, B * Lk * Dv);
  float* out = a.f32n(9, B * Lq * Dv);
  float* lse = a.f32n(10, B * Lq);
  idx_t H = a.count(11);
  if (a.failed) return nullptr;
  if (H < 1 || B % H != 0) return a.fail("range", "heads must divide the batch entries"), nullptr;
  active->attentionForward(q, k, v, B, Lq, Lk, D, Dv, scale, out, lse, H);
  return undef(env);
}

// attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H)
napi_value attentionBackwardEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(attentionBackward);
  idx_t B = a.count(6), Lq = a.count(7), Lk = a.count(8), D = a.count(9), Dv = a.count(10);
  float scale = (float)a.num(11);
  const float* q = a.f32n(0, B * Lq * D);
  const float* k = a.f32n(1, B * Lk * D);
  const float* v = a.f32n(2, B * Lk * Dv);
  const float* out = a.f32n(3, B * Lq * Dv);
  const float* gout = a.f32n(4, B * Lq * Dv);
  const float* lse = a.f32n(5, B * Lq);
  float* gq = a.f32n(12, B * Lq * D);
  float* gk = a.f32n(13, B * Lk * D);
  float* gv = a.f32n(14, B * Lk * Dv);
  idx_t H = a.count(15);
  if (a.failed) return nullptr;
  if (H < 1 || B % H != 0) return a.fail("range", "heads must divide the batch entries"), nullptr;
  active->attentionBackward(q, k, v, out, gout, lse, B, Lq, Lk, D, Dv, scale, gq, gk, gv, H);
  return undef(env);
}

// upsampleNearestForward(x, NC, H, W, s, out) / upsampleNearestBackward(gy, NC, H, W, s, gx)
napi_value UpsampleNearest(napi_env env, napi_callback_info info, bool backward) {
  Args a(env, info, backward ? "upsampleNearestBackward" : "upsampleNearestForward",
         backward ? nargs::upsampleNearestBackward : nargs::upsampleNearestForward);
  idx_t NC = a.count(1), H = a.count(2), W = a.count(3), s = a.count(4);
  if (a.failed) return nullptr;
  if (s < 1) return a.fail("range", "scale must be at least 1"), nullptr;
  const idx_t small = NC * H * W, big = small * s * s;
  const float* src = a.f32n(0, backward ? big : small);
  float* dst = a.f32n(5, backward ? small : big);
  if (a.failed) return nullptr;
  if (small > 0) (backward ? active->upsampleNearestBackward : active->upsampleNearestForward)(src, NC, H, W, s, dst);
  return undef(env);
}
napi_value upsampleNearestForwardEntry(napi_env env, napi_callback_info info) { return UpsampleNearest(env, info, false); }
napi_value upsampleNearestBackwardEntry(napi_env env, napi_callback_info info) { return UpsampleNearest(env, info, true); }

// avgPool2dForward(x, NC, H, W, k, stride, OH, OW, out) / avgPool2dBackward(gy, NC, H, W, k, stride, OH, OW, gx)
napi_value AvgPool2d(napi_env env, napi_callback_info info, bool backward) {
  Args a(env, info, backward ? "avgPool2dBackward" : "avgPool2dForward",
         backward ? nargs::avgPool2dBackward : nargs::avgPool2dForward);
  idx_t NC = a.count(1), H = a.count(2), W = a.count(3), k = a.count(4), st = a.count(5), OH = a.count(6), OW = a.count(7);
  if (a.failed) return nullptr;
  if (k < 1 || st < 1) return a.fail("range", "kernel and stride must be at least 1"), nullptr;
  // Every window must lie inside the image.
  if ((OH > 0 && (OH - 1) * st + k > H) || (OW > 0 && (OW - 1) * st + k > W)) {
    return a.fail("range", "output size reaches outside the input"), nullptr;
  }
  const idx_t in = NC * H * W, out = NC * OH * OW;
  const float* src = a.f32n(0, backward ? out : in);
  float* dst = a.f32n(8, backward ? in : out);
  if (a.failed) return nullptr;
  if (backward) {
    if (in > 0) active->avgPool2dBackward(src, NC, H, W, k, st, OH, OW, dst);
  } else if (out > 0) {
    active->avgPool2dForward(src, NC, H, W, k, st, OH, OW, dst);
  }
  return undef(env);
}
napi_value avgPool2dForwardEntry(napi_env env, napi_callback_info info) { return AvgPool2d(env, info, false); }
napi_value avgPool2dBackwardEntry(napi_env env, napi_callback_info info) { return AvgPool2d(env, info, true); }

// bilinearForward(x, NC, H, W, OH, OW, scaleH, scaleW, out) / bilinearBackward(gy, NC, H, W, OH, OW, scaleH, scaleW, gx)
napi_value Bilinear(napi_env env, napi_callback_info info, bool backward) {
  Args a(env, info, backward ? "bilinearBackward" : "bilinearForward",
         backward ? nargs::bilinearBackward : nargs::bilinearForward);
  idx_t NC = a.count(1), H = a.count(2), W = a.count(3), OH = a.count(4), OW = a.count(5);
  double scaleH = a.num(6), scaleW = a.num(7);
  if (a.failed) return nullptr;
  if (!(scaleH >= 0) || !(scaleW >= 0) || std::isinf(scaleH) || std::isinf(scaleW)) {
    return a.fail("range", "scales must be finite and non-negative"), nullptr;
  }
  const idx_t in = NC * H * W, out = NC * OH * OW;
  if (out > 0 && in == 0) return a.fail("range", "empty input"), nullptr;
  const float* src = a.f32n(0, backward ? out : in);
  float* dst = a.f32n(8, backward ? in : out);
  if (a.failed) return nullptr;
  if (backward) {
    if (in > 0) active->bilinearBackward(src, NC, H, W, OH, OW, scaleH, scaleW, dst);
  } else if (out > 0) {
    active->bilinearForward(src, NC, H, W, OH, OW, scaleH, scaleW, dst);
  }
  return undef(env);
}
napi_value bilinearForwardEntry(napi_env env, napi_callback_info info) { return Bilinear(env, info, false); }
napi_value bilinearBackwardEntry(napi_env env, napi_callback_info info) { return Bilinear(env, info, true); }

// extreme(x, outer, n, inner, out, idx, isMax)
napi_value extremeEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(extreme);
  idx_t outer = a.count(1), n = a.count(2), inner = a.count(3);
  bool isMax = a.flag(6);
  if (a.failed) return nullptr;
  if (n == 0 && outer * inner > 0) return a.fail("range", "reduction over an empty axis"), nullptr;
  if (n > 0x7fffffff) return a.fail("range", "axis too long for int32 indices"), nullptr;
  const float* x = a.f32n(0, outer * n * inner);
  float* out = a.f32n(4, outer * inner);
  std::int32_t* idx = a.i32n(5, outer * inner);
  if (a.failed) return nullptr;
  active->extreme(x, outer, n, inner, out, idx, isMax);
  return undef(env);
}

// adamUpdate(w, wOff, grad, m, v, vmax|null, n, hyper) — hyper = {beta1, beta2, eps, stepSize, bc2sqrt, l2, decay, sign}
napi_value adamUpdateEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(adamUpdate);
  idx_t wOff = a.count(1), n = a.count(6);
  const ldm::AdamHyper h = a.adamHyper(7);
  float* w = a.f32n(0, wOff + n);
  const float* g = a.f32n(2, n);
  float* m = a.f32n(3, n);
  float* v = a.f32n(4, n);
  float* vmax = a.f32n(5, n, true);
  if (a.failed) return nullptr;
  active->adamUpdate(w + wOff, g, m, v, vmax, n, h);
  return undef(env);
}

// fmaPeak(iters, out) — out: Float32Array of at least threads + 1 (out[0] = floats per vector, then one sum per thread)
napi_value fmaPeakEntry(napi_env env, napi_callback_info info) {
  LDM_ARGS(fmaPeak);
  idx_t iters = a.count(0);
  float* out = a.f32n(1, (idx_t)ldm::numThreads() + 1);
  if (a.failed) return nullptr;
  active->fmaPeak(iters, out);
  return undef(env);
}

// setIsa(name) → true when that kernel set is compiled in and this CPU runs it.
napi_value SetIsa(napi_env env, napi_callback_info info) {
  Args a(env, info, "setIsa");
  char name[32] = {0};
  size_t len = 0;
  if (a.argc < 1 || napi_get_value_string_utf8(env, a.argv[0], name, sizeof name, &len) != napi_ok) {
    a.fail("type", "expected an ISA name");
    return nullptr;
  }
  const KernelTable* t = !std::strcmp(name, "auto") ? pickTable() : tableByName(name);
  bool ok = supported(t);
  if (ok) active = t;
  napi_value r;
  napi_get_boolean(env, ok, &r);
  return r;
}

napi_value SetThreads(napi_env env, napi_callback_info info) {
  Args a(env, info, "setThreads");
  idx_t n = a.count(0);
  if (a.failed) return nullptr;
  ldm::setNumThreads((int)(n < 1 ? 1 : n > 256 ? 256 : n));
  return undef(env);
}

// info() → { isa, threads, isas: [names this CPU can run], kernels: [names], args: { name: argument count } }
napi_value Info(napi_env env, napi_callback_info) {
  napi_value o, s, n, arr;
  napi_create_object(env, &o);
  napi_create_string_utf8(env, active->name, NAPI_AUTO_LENGTH, &s);
  napi_set_named_property(env, o, "isa", s);
  napi_create_int32(env, ldm::numThreads(), &n);
  napi_set_named_property(env, o, "threads", n);
  napi_create_array(env, &arr);
  uint32_t k = 0;
  const char* names[3] = {"avx512", "avx2", "base"};
  for (const char* nm : names) {
    if (!supported(tableByName(nm))) continue;
    napi_value e;
    napi_create_string_utf8(env, nm, NAPI_AUTO_LENGTH, &e);
    napi_set_element(env, arr, k++, e);
  }
  napi_set_named_property(env, o, "isas", arr);
  // The kernels this build implements (entries of the active table that are present), and the argument
  // count of each export.
  const KernelTable* t = active;
  struct {
    const char* name;
    bool present;
    size_t args;
  } ks[] = {
#define LDM_KERNEL_INFO(name, jsArgs, params) {#name, t->name != nullptr, jsArgs},
      LDM_KERNELS(LDM_KERNEL_INFO)
#undef LDM_KERNEL_INFO
  };
  napi_value karr, args;
  napi_create_array(env, &karr);
  napi_create_object(env, &args);
  k = 0;
  for (auto& e : ks) {
    if (!e.present) continue;
    napi_value sv, nv;
    napi_create_string_utf8(env, e.name, NAPI_AUTO_LENGTH, &sv);
    napi_set_element(env, karr, k++, sv);
    napi_create_uint32(env, (uint32_t)e.args, &nv);
    napi_set_named_property(env, args, e.name, nv);
  }
  napi_set_named_property(env, o, "kernels", karr);
  napi_set_named_property(env, o, "args", args);
  return o;
}

// Tensor buffers are JS typed arrays (calloc'd by Node, freed only when V8 collects them). With glibc's
// defaults every buffer above the dynamic mmap threshold is fresh mmap'd memory, and the heap top is
// trimmed after each collection, so each new activation pays a page fault per 4 KiB (~0.5 ms per 2 MiB on
// this machine, more than many kernels take). Keeping medium buffers on the heap and not trimming it
// recycles resident pages instead. Opt out with LDM_MALLOC_TUNE=0.
void tuneMalloc() {
#if defined(__GLIBC__)
  const char* v = std::getenv("LDM_MALLOC_TUNE");
  if (v && !std::strcmp(v, "0")) return;
  mallopt(M_MMAP_THRESHOLD, 32 << 20);
  mallopt(M_TRIM_THRESHOLD, 128 << 20);
#endif
}

}  // namespace

NAPI_MODULE_INIT() {
  if (!active) {
    tuneMalloc();
    active = pickTable();
    if (const char* env_isa = std::getenv("LDM_ISA")) {
      const KernelTable* t = tableByName(env_isa);
      if (supported(t)) active = t;
    }
  }
  struct {
    const char* name;
    napi_callback cb;
  } fns[] = {
#define LDM_KERNEL_EXPORT(name, jsArgs, params) {#name, name##Entry},
      LDM_KERNELS(LDM_KERNEL_EXPORT)
#undef LDM_KERNEL_EXPORT
      {"setIsa", SetIsa},
      {"setThreads", SetThreads},
      {"info", Info},
  };
  for (auto& f : fns) {
    napi_value fn;
    napi_create_function(env, f.name, NAPI_AUTO_LENGTH, f.cb, nullptr, &fn);
    napi_set_named_property(env, exports, f.name, fn);
  }
  return exports;
}
