// AVX2 + FMA build of the kernels (compiled with -mavx2 -mfma -mf16c).
#if defined(__AVX2__) && defined(__FMA__)
#define LDM_ISA avx2
#define LDM_ISA_NAME "avx2"
#define LDM_LEVEL 2
#include "kernels.inc"
extern "C" const ldm::KernelTable* ldm_table_avx2() { return &ldm::avx2::table; }
#else
#include "common.h"
extern "C" const ldm::KernelTable* ldm_table_avx2() { return nullptr; }
#endif
