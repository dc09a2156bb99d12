// The native kernel list, written once. Everything else is generated from it with the X-macro
// LDM_KERNELS(X): the KernelTable fields (common.h), each ISA build's table (kernels.inc), the addon's
// exports, argument counts and the `kernels` / `args` lists of info() (binding.cc).
//
//   X(name, jsArgs, params)
//     name    the KernelTable field, the name of each ISA's implementation, and the addon export;
//             the export's N-API entry point in binding.cc is <name>Entry
//     jsArgs  how many arguments the addon export takes (checked before any is read)
//     params  the C++ parameter list of the kernel (types from common.h)
#pragma once

#define LDM_KERNELS(X)                                                                                             \
  X(gemm, 21, (const GemmArgs& g))                                                                               \
  X(gemmPackB, 7, (idx_t K, idx_t N, const float* B, idx_t ldb, bool transB, float* dst, idx_t* info))          \
  X(unary, 8, (int op, float p, float q, const float* x, const idx_t* xs, float* out, const idx_t* shape, int nd)) \
  X(unaryBackward, 7, (int op, float p, float q, const float* x, const float* y, const float* g, float* out, idx_t n)) \
  X(binary, 9,                                                                                                     \
    (int op, const float* a, const idx_t* as, const float* b, const idx_t* bs, float* out, const idx_t* shape,   \
     int nd))                                                                                                      \
  X(where, 11,                                                                                                     \
    (const float* c, const idx_t* cs, const float* a, const idx_t* as, const float* b, const idx_t* bs,          \
     float* out, const idx_t* shape, int nd))                                                                      \
  X(sum, 5, (const float* x, idx_t outer, idx_t n, idx_t inner, float* out))                                      \
  X(conv2dForward, 5,                                                                                             \
    (const ConvGeom& g, const float* x, const float* w, const float* bias, float* out, const float* packed))    \
  X(conv2dPackWeights, 3, (const ConvGeom& g, const float* w, float* dst, idx_t* info))                          \
  X(conv2dBackwardInput, 4, (const ConvGeom& g, const float* gy, const float* w, float* gx))                      \
  X(conv2dBackwardWeight, 5, (const ConvGeom& g, const float* x, const float* gy, float* gw, float* gb))          \
  X(groupNormForward, 12,                                                                                          \
    (const float* x, idx_t N, idx_t C, idx_t HW, idx_t G, float eps, const float* gamma, const float* beta,      \
     bool silu, float* out, float* mean, float* rstd))                                                             \
  X(groupNormBackward, 14,                                                                                         \
    (const float* x, const float* gy, idx_t N, idx_t C, idx_t HW, idx_t G, const float* gamma, const float* beta, \
     bool silu, const float* mean, const float* rstd, float* gx, float* ggamma, float* gbeta))                   \
  X(layerNormForward, 9,                                                                                           \
    (const float* x, idx_t rows, idx_t cols, float eps, const float* gamma, const float* beta, float* out,       \
     float* mean, float* rstd))                                                                                    \
  X(layerNormBackward, 10,                                                                                         \
    (const float* x, const float* gy, idx_t rows, idx_t cols, const float* gamma, const float* mean,             \
     const float* rstd, float* gx, float* ggamma, float* gbeta))                                                   \
  X(softmaxForward, 5, (const float* x, idx_t rows, idx_t cols, float* out, bool log))                            \
  X(softmaxBackward, 6, (const float* y, const float* gy, idx_t rows, idx_t cols, float* gx, bool log))           \
  X(attentionForward, 12,                                                                                          \
    (const float* q, const float* k, const float* v, idx_t B, idx_t Lq, idx_t Lk, idx_t D, idx_t Dv, float scale, \
     float* out, float* lse, idx_t H))                                                                             \
  X(attentionBackward, 16,                                                                                         \
    (const float* q, const float* k, const float* v, const float* out, const float* gout, const float* lse,      \
     idx_t B, idx_t Lq, idx_t Lk, idx_t D, idx_t Dv, float scale, float* gq, float* gk, float* gv, idx_t H))      \
  X(upsampleNearestForward, 6, (const float* x, idx_t NC, idx_t H, idx_t W, idx_t s, float* out))                \
  X(upsampleNearestBackward, 6, (const float* gy, idx_t NC, idx_t H, idx_t W, idx_t s, float* gx))               \
  X(avgPool2dForward, 9,                                                                                           \
    (const float* x, idx_t NC, idx_t H, idx_t W, idx_t k, idx_t stride, idx_t OH, idx_t OW, float* out))        \
  X(avgPool2dBackward, 9,                                                                                          \
    (const float* gy, idx_t NC, idx_t H, idx_t W, idx_t k, idx_t stride, idx_t OH, idx_t OW, float* gx))        \
  X(bilinearForward, 9,                                                                                            \
    (const float* x, idx_t NC, idx_t H, idx_t W, idx_t OH, idx_t OW, double scaleH, double scaleW, float* out))  \
  X(bilinearBackward, 9,                                                                                           \
    (const float* gy, idx_t NC, idx_t H, idx_t W, idx_t OH, idx_t OW, double scaleH, double scaleW, float* gx))  \
  X(extreme, 7, (const float* x, idx_t outer, idx_t n, idx_t inner, float* out, std::int32_t* idx, bool isMax))  \
  X(adamUpdate, 8, (float* w, const float* grad, float* m, float* v, float* vmax, idx_t n, const AdamHyper& h))  \
  X(fmaPeak, 2, (idx_t iters, float* out))
