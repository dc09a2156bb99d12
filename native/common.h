// Shared declarations of the native kernel library: the kernel table each ISA build fills in (its entries
// are listed once, in kernel_list.h), and the thread pool every kernel parallelises with. Compiled into every translation unit, so it holds only
// declarations and plain structs (no inline code that could differ between ISA builds).
#pragma once
#include <cstddef>
#include <cstdint>

#include "kernel_list.h"

namespace ldm {

typedef std::int64_t idx_t;

// Packs kept by the caller across calls (conv2dPackWeights, gemmPackB) start with PACK_HEADER floats: the layout
// tag first (kernel set, micro-panel rows, kind), zeros after; the kernels that take a pack check the tag.
constexpr idx_t PACK_HEADER = 16;
inline float* writePackHeader(float* dst, idx_t tag) {
  for (idx_t i = 0; i < PACK_HEADER; i++) dst[i] = 0.0f;
  dst[0] = (float)tag;
  return dst + PACK_HEADER;
}

struct GemmArgs {
  bool transA, transB;
  idx_t M, N, K;
  float alpha, beta;
  const float* A; idx_t lda, strideA;
  const float* B; idx_t ldb, strideB;
  float* C; idx_t ldc, strideC;
  idx_t batch;
  const float* bias = nullptr;  // N values added to every row of C (with beta 0): a linear layer's bias
  const float* packedB = nullptr;  // op(B), shared by every entry (strideB 0), packed beforehand (gemmPackB)
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

// One entry per kernel of native/kernel_list.h, in that order.
struct KernelTable {
  const char* name;
#define LDM_KERNEL_FIELD(name, jsArgs, params) void(*name) params;
  LDM_KERNELS(LDM_KERNEL_FIELD)
#undef LDM_KERNEL_FIELD
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
