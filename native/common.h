// Shared declarations of the native kernel library: the kernel table each ISA build fills in, and the
// thread pool every kernel parallelises with. Compiled into every translation unit, so it holds only
// declarations and plain structs (no inline code that could differ between ISA builds).
#pragma once
#include <cstddef>
#include <cstdint>

namespace ldm {

typedef std::int64_t idx_t;

struct GemmArgs {
  bool transA, transB;
  idx_t M, N, K;
  float alpha, beta;
  const float* A; idx_t lda, strideA;
  const float* B; idx_t ldb, strideB;
  float* C; idx_t ldc, strideC;
  idx_t batch;
};

// Strided operand over an output shape (already offset; a broadcast dim has stride 0).
struct StridedIn {
  const float* data;
  const idx_t* strides;
};

enum UnaryOp {
  U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_SIN, U_COS, U_ABS, U_SIGMOID, U_TANH, U_SILU, U_GELU, U_RELU,
  U_LEAKY_RELU, U_SQUARE, U_RECIPROCAL, U_SIGN, U_POW_SCALAR, U_CLAMP, U_ADD_SCALAR, U_MUL_SCALAR,
  U_RSUB_SCALAR, U_COPY, U_COUNT
};
enum BinaryOp { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAXIMUM, B_MINIMUM, B_GT, B_LT, B_GE, B_LE, B_EQ, B_COUNT };

struct ConvGeom {
  idx_t N, C, H, W, O, kh, kw, sh, sw, padTop, padLeft, OH, OW;
};

// Adam / AdamW step constants (see native/optim.inc): stepSize = lr / (1 − β1ᵗ), bc2sqrt = √(1 − β2ᵗ),
// l2 = Adam's L2 weight decay, decay = AdamW's 1 − lr·wd (1 for Adam), sign = −1 to maximise.
struct AdamHyper {
  double beta1, beta2, eps, stepSize, bc2sqrt, l2, decay, sign;
};

struct KernelTable {
  const char* name;
  void (*gemm)(const GemmArgs& g);
  void (*unary)(int op, float p, float q, const float* x, const idx_t* xs, float* out, const idx_t* shape, int nd);
  void (*unaryBackward)(int op, float p, float q, const float* x, const float* y, const float* g, float* out, idx_t n);
  void (*binary)(int op, const float* a, const idx_t* as, const float* b, const idx_t* bs, float* out,
                 const idx_t* shape, int nd);
  void (*where)(const float* c, const idx_t* cs, const float* a, const idx_t* as, const float* b, const idx_t* bs,
                float* out, const idx_t* shape, int nd);
  void (*sum)(const float* x, idx_t outer, idx_t n, idx_t inner, float* out);
  void (*conv2dForward)(const ConvGeom& g, const float* x, const float* w, const float* bias, float* out);
  void (*conv2dBackwardInput)(const ConvGeom& g, const float* gy, const float* w, float* gx);
  void (*conv2dBackwardWeight)(const ConvGeom& g, const float* x, const float* gy, float* gw, float* gb);
  void (*groupNormForward)(const float* x, idx_t N, idx_t C, idx_t HW, idx_t G, float eps, const float* gamma,
                           const float* beta, bool silu, float* out, float* mean, float* rstd);
  void (*groupNormBackward)(const float* x, const float* gy, idx_t N, idx_t C, idx_t HW, idx_t G, const float* gamma,
                            const float* beta, bool silu, const float* mean, const float* rstd, float* gx,
                            float* ggamma, float* gbeta);
  void (*layerNormForward)(const float* x, idx_t rows, idx_t cols, float eps, const float* gamma, const float* beta,
                           float* out, float* mean, float* rstd);
  void (*layerNormBackward)(const float* x, const float* gy, idx_t rows, idx_t cols, const float* gamma,
                            const float* mean, const float* rstd, float* gx, float* ggamma, float* gbeta);
  void (*softmaxForward)(const float* x, idx_t rows, idx_t cols, float* out, bool log);
  void (*softmaxBackward)(const float* y, const float* gy, idx_t rows, idx_t cols, float* gx, bool log);
  void (*attentionForward)(const float* q, const float* k, const float* v, idx_t B, idx_t Lq, idx_t Lk, idx_t D,
                           idx_t Dv, float scale, float* out, float* lse);
  void (*attentionBackward)(const float* q, const float* k, const float* v, const float* out, const float* gout,
                            const float* lse, idx_t B, idx_t Lq, idx_t Lk, idx_t D, idx_t Dv, float scale, float* gq,
                            float* gk, float* gv);
  void (*upsampleNearestForward)(const float* x, idx_t NC, idx_t H, idx_t W, idx_t s, float* out);
  void (*upsampleNearestBackward)(const float* gy, idx_t NC, idx_t H, idx_t W, idx_t s, float* gx);
  void (*avgPool2dForward)(const float* x, idx_t NC, idx_t H, idx_t W, idx_t k, idx_t stride, idx_t OH, idx_t OW,
                           float* out);
  void (*avgPool2dBackward)(const float* gy, idx_t NC, idx_t H, idx_t W, idx_t k, idx_t stride, idx_t OH, idx_t OW,
                            float* gx);
  void (*bilinearForward)(const float* x, idx_t NC, idx_t H, idx_t W, idx_t OH, idx_t OW, double scaleH,
                          double scaleW, float* out);
  void (*bilinearBackward)(const float* gy, idx_t NC, idx_t H, idx_t W, idx_t OH, idx_t OW, double scaleH,
                           double scaleW, float* gx);
  void (*extreme)(const float* x, idx_t outer, idx_t n, idx_t inner, float* out, std::int32_t* idx, bool isMax);
  void (*adamUpdate)(float* w, const float* grad, float* m, float* v, float* vmax, idx_t n, const AdamHyper& h);
};

// ---- thread pool (threadpool.cc) ----
int numThreads();
void setNumThreads(int n);
// Runs fn(ctx, task, thread) for task in [0, ntasks) on the pool (the caller takes part). Nested calls
// from inside a task run serially on the calling thread. `thread` is in [0, numThreads()).
void parallelRun(idx_t ntasks, void (*fn)(void* ctx, idx_t task, int thread), void* ctx);
// 64-byte aligned scratch memory (freed with freeAligned).
void* allocAligned(std::size_t bytes);
void freeAligned(void* p);
// A grow-only 64-byte aligned buffer owned by the calling OS thread; `slot` (0..15) separates uses that
// can be live at the same time (see the slot list in kernels.inc). Contents are not preserved on growth.
void* threadScratch(int slot, std::size_t bytes);

}  // namespace ldm

extern "C" {
const ldm::KernelTable* ldm_table_avx512();
const ldm::KernelTable* ldm_table_avx2();
const ldm::KernelTable* ldm_table_base();
}
