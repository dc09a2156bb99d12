// AVX-512 build of the kernels (compiled with -mavx512f -mavx512bw -mavx512dq -mavx512vl -mfma).
#if defined(__AVX512F__) && defined(__AVX512BW__) && defined(__AVX512DQ__) && defined(__AVX512VL__) && defined(__FMA__)
#define LDM_ISA avx512
#define LDM_ISA_NAME "avx512"
#define LDM_LEVEL 3
#include "kernels.inc"
extern "C" const ldm::KernelTable* ldm_table_avx512() { return &ldm::avx512::table; }
#else
#include "common.h"
extern "C" const ldm::KernelTable* ldm_table_avx512() { return nullptr; }
#endif
