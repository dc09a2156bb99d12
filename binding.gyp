# The native kernel addon (build/Release/ldm_native.node). The kernels are compiled three times with
# different target flags (AVX-512, AVX2+FMA, portable) into static libraries; binding.cc picks one at
# load time with __builtin_cpu_supports. Built by scripts/build-native.mjs during `npm install`.
{
  "target_defaults": {
    "cflags_cc": ["-O3", "-std=gnu++17", "-fPIC", "-fno-math-errno", "-fvisibility=hidden", "-Wno-maybe-uninitialized"],
    "cflags_cc!": ["-fno-exceptions"],
    "xcode_settings": {"OTHER_CPLUSPLUSFLAGS": ["-O3", "-std=gnu++17"]},
  },
  "targets": [
    {
      "target_name": "ldm_kernels_base",
      "type": "static_library",
      "sources": ["native/kernels_base.cc"],
    },
    {
      "target_name": "ldm_kernels_avx2",
      "type": "static_library",
      "sources": ["native/kernels_avx2.cc"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {"cflags_cc": ["-mavx2", "-mfma", "-mf16c"]}],
      ],
    },
    {
      "target_name": "ldm_kernels_avx512",
      "type": "static_library",
      "sources": ["native/kernels_avx512.cc"],
      "conditions": [
        ["target_arch=='x64' and OS!='win'", {
          "cflags_cc": ["-mavx512f", "-mavx512bw", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma", "-mf16c"],
        }],
      ],
    },
    {
      "target_name": "ldm_native",
      "sources": ["native/binding.cc", "native/threadpool.cc"],
      "dependencies": ["ldm_kernels_base", "ldm_kernels_avx2", "ldm_kernels_avx512"],
      "defines": ["NAPI_VERSION=8"],
      "ldflags": ["-pthread"],
    },
  ],
}
