// Portable build of the kernels: SSE2 on x86-64 (always present there), plain C++ elsewhere.
#if defined(__SSE2__)
#define LDM_LEVEL 1
#define LDM_ISA_NAME "sse2"
#else
#define LDM_LEVEL 0
#define LDM_ISA_NAME "scalar"
#endif
#define LDM_ISA base
#include "kernels.inc"
extern "C" const ldm::KernelTable* ldm_table_base() { return &ldm::base::table; }
