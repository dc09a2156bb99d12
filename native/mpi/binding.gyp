# The optional MPI collectives addon (native/mpi/build/Release/ldm_mpi.node), built by
# scripts/build-mpi.mjs when Open MPI's compiler wrapper (mpicc, Debian: libopenmpi-dev) is present.
# Include and link flags come from `mpicc --showme:compile` / `--showme:link`.
{
  "targets": [
    {
      "target_name": "ldm_mpi",
      "sources": ["ldm_mpi.cc"],
      "defines": ["NAPI_VERSION=8", "OMPI_SKIP_MPICXX=1", "MPICH_SKIP_MPICXX=1"],
      "cflags_cc": ["-O2", "-std=gnu++17", "-fPIC", "<!@(mpicc --showme:compile)"],
      "libraries": ["<!@(mpicc --showme:link)", "-ldl"],
    },
  ],
}
