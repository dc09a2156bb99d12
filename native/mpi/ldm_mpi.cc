// N-API binding of the few MPI collectives data-parallel training needs: init (rank, size), in-place
// all-reduce (sum or mean) of float32/float64 buffers, blocking and non-blocking, broadcast of any typed
// array from a root, barrier, finalize. Buffers are reduced in place (MPI_IN_PLACE), so no copy is made.
//
// libmpi is re-opened with RTLD_GLOBAL before MPI_Init: Open MPI loads its transport plugins with dlopen,
// and they resolve symbols of libmpi globally, which fails when libmpi came in as a dependency of an addon
// that Node loaded with local symbol visibility.
#include <node_api.h>
#include <mpi.h>
#include <dlfcn.h>

#include <cstring>
#include <string>
#include <vector>

namespace {

struct Pending {
  MPI_Request req = MPI_REQUEST_NULL;
  napi_ref buffer = nullptr;  // keeps the typed array alive until wait()
  bool mean = false;
  void* data = nullptr;
  size_t length = 0;
  napi_typedarray_type type = napi_float32_array;
  bool used = false;
};

std::vector<Pending> pending;
int worldSize = 1;

napi_value fail(napi_env env, const std::string& msg) {
  napi_throw_error(env, nullptr, msg.c_str());
  return nullptr;
}

std::string mpiError(int code) {
  char buf[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(code, buf, &len);
  return std::string(buf, len);
}

bool isInitialized() {
  int flag = 0;
  MPI_Initialized(&flag);
  int fin = 0;
  MPI_Finalized(&fin);
  return flag && !fin;
}

napi_value makeInt(napi_env env, int64_t v) {
  napi_value out;
  napi_create_int64(env, v, &out);
  return out;
}

napi_value Init(napi_env env, napi_callback_info) {
  if (!isInitialized()) {
    int fin = 0;
    MPI_Finalized(&fin);
    if (fin) return fail(env, "MPI: already finalized in this process");
    dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL | RTLD_NOLOAD);
    dlopen("libmpi.so.40", RTLD_NOW | RTLD_GLOBAL);
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided);
    if (rc != MPI_SUCCESS) return fail(env, "MPI_Init_thread failed: " + mpiError(rc));
    MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
  }
  int rank = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &rank);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  char version[MPI_MAX_LIBRARY_VERSION_STRING];
  int vlen = 0;
  MPI_Get_library_version(version, &vlen);
  napi_value out;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "rank", makeInt(env, rank));
  napi_set_named_property(env, out, "size", makeInt(env, worldSize));
  napi_value v;
  std::string vs(version, vlen);
  while (!vs.empty() && (vs.back() == '\n' || vs.back() == '\0')) vs.pop_back();
  napi_create_string_utf8(env, vs.c_str(), vs.size(), &v);
  napi_set_named_property(env, out, "library", v);
  return out;
}

// Reads argument `i` as a typed array; `floatOnly` restricts it to float32/float64.
bool typedArg(napi_env env, napi_value arg, bool floatOnly, napi_typedarray_type* type, void** data, size_t* length, const char* who) {
  bool is = false;
  napi_is_typedarray(env, arg, &is);
  if (!is) {
    fail(env, std::string(who) + ": expected a typed array");
    return false;
  }
  napi_value ab;
  size_t offset;
  napi_get_typedarray_info(env, arg, type, length, data, &ab, &offset);
  if (floatOnly && *type != napi_float32_array && *type != napi_float64_array) {
    fail(env, std::string(who) + ": expected a Float32Array or Float64Array");
    return false;
  }
  return true;
}

size_t elementBytes(napi_typedarray_type t) {
  switch (t) {
    case napi_int8_array: case napi_uint8_array: case napi_uint8_clamped_array: return 1;
    case napi_int16_array: case napi_uint16_array: return 2;
    case napi_int32_array: case napi_uint32_array: case napi_float32_array: return 4;
    default: return 8;
  }
}

bool meanArg(napi_env env, napi_value v) {
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t != napi_string) return false;
  char buf[8];
  size_t n = 0;
  napi_get_value_string_utf8(env, v, buf, sizeof buf, &n);
  return std::strcmp(buf, "mean") == 0;
}

void divide(void* data, size_t n, napi_typedarray_type t) {
  if (t == napi_float32_array) {
    float* p = static_cast<float*>(data);
    const float inv = 1.0f / static_cast<float>(worldSize);
    for (size_t i = 0; i < n; i++) p[i] *= inv;
  } else {
    double* p = static_cast<double*>(data);
    const double inv = 1.0 / static_cast<double>(worldSize);
    for (size_t i = 0; i < n; i++) p[i] *= inv;
  }
}

napi_value Allreduce(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (!isInitialized()) return fail(env, "MPI allreduce: MPI is not initialized (call init first)");
  if (argc < 1) return fail(env, "MPI allreduce(buffer, 'sum' | 'mean')");
  napi_typedarray_type type;
  void* data;
  size_t length;
  if (!typedArg(env, argv[0], true, &type, &data, &length, "MPI allreduce")) return nullptr;
  const bool mean = argc > 1 && meanArg(env, argv[1]);
  if (length > static_cast<size_t>(INT32_MAX)) return fail(env, "MPI allreduce: buffer longer than 2^31 elements");
  int rc = MPI_Allreduce(MPI_IN_PLACE, data, static_cast<int>(length), type == napi_float32_array ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return fail(env, "MPI_Allreduce failed: " + mpiError(rc));
  if (mean) divide(data, length, type);
  return nullptr;
}

napi_value Iallreduce(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (!isInitialized()) return fail(env, "MPI iallreduce: MPI is not initialized (call init first)");
  if (argc < 1) return fail(env, "MPI iallreduce(buffer, 'sum' | 'mean')");
  Pending p;
  if (!typedArg(env, argv[0], true, &p.type, &p.data, &p.length, "MPI iallreduce")) return nullptr;
  if (p.length > static_cast<size_t>(INT32_MAX)) return fail(env, "MPI iallreduce: buffer longer than 2^31 elements");
  p.mean = argc > 1 && meanArg(env, argv[1]);
  int rc = MPI_Iallreduce(MPI_IN_PLACE, p.data, static_cast<int>(p.length), p.type == napi_float32_array ? MPI_FLOAT : MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD, &p.req);
  if (rc != MPI_SUCCESS) return fail(env, "MPI_Iallreduce failed: " + mpiError(rc));
  napi_create_reference(env, argv[0], 1, &p.buffer);
  p.used = true;
  size_t slot = 0;
  while (slot < pending.size() && pending[slot].used) slot++;
  if (slot == pending.size()) pending.push_back(p);
  else pending[slot] = p;
  return makeInt(env, static_cast<int64_t>(slot));
}

// The pending request named by the first argument, or −1 after throwing.
int64_t pendingSlot(napi_env env, napi_callback_info info, const char* who) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int64_t slot = -1;
  if (argc < 1 || napi_get_value_int64(env, argv[0], &slot) != napi_ok || slot < 0 || static_cast<size_t>(slot) >= pending.size() || !pending[slot].used) {
    fail(env, std::string("MPI ") + who + ": not a pending request handle");
    return -1;
  }
  return slot;
}

napi_value Wait(napi_env env, napi_callback_info info) {
  const int64_t slot = pendingSlot(env, info, "wait");
  if (slot < 0) return nullptr;
  Pending& p = pending[slot];
  int rc = MPI_Wait(&p.req, MPI_STATUS_IGNORE);
  if (rc != MPI_SUCCESS) return fail(env, "MPI_Wait failed: " + mpiError(rc));
  if (p.mean) divide(p.data, p.length, p.type);
  napi_delete_reference(env, p.buffer);
  p = Pending();
  return nullptr;
}

// Lets non-blocking collectives progress while the caller computes (Open MPI progresses inside MPI calls).
napi_value Test(napi_env env, napi_callback_info info) {
  const int64_t slot = pendingSlot(env, info, "test");
  if (slot < 0) return nullptr;
  int done = 0;
  MPI_Test(&pending[slot].req, &done, MPI_STATUS_IGNORE);
  napi_value out;
  napi_get_boolean(env, done != 0, &out);
  if (done) {
    Pending& p = pending[slot];
    p.req = MPI_REQUEST_NULL;
    // MPI_Wait on a null request returns at once; wait() still applies the mean and releases the buffer.
  }
  return out;
}

napi_value Broadcast(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  if (!isInitialized()) return fail(env, "MPI broadcast: MPI is not initialized (call init first)");
  if (argc < 2) return fail(env, "MPI broadcast(buffer, root)");
  napi_typedarray_type type;
  void* data;
  size_t length;
  if (!typedArg(env, argv[0], false, &type, &data, &length, "MPI broadcast")) return nullptr;
  int32_t root = 0;
  napi_get_value_int32(env, argv[1], &root);
  if (root < 0 || root >= worldSize) return fail(env, "MPI broadcast: root " + std::to_string(root) + " is not a rank of " + std::to_string(worldSize));
  const size_t bytes = length * elementBytes(type);
  if (bytes > static_cast<size_t>(INT32_MAX)) return fail(env, "MPI broadcast: buffer larger than 2 GiB");
  int rc = MPI_Bcast(data, static_cast<int>(bytes), MPI_BYTE, root, MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return fail(env, "MPI_Bcast failed: " + mpiError(rc));
  return nullptr;
}

napi_value Barrier(napi_env env, napi_callback_info) {
  if (!isInitialized()) return fail(env, "MPI barrier: MPI is not initialized (call init first)");
  int rc = MPI_Barrier(MPI_COMM_WORLD);
  if (rc != MPI_SUCCESS) return fail(env, "MPI_Barrier failed: " + mpiError(rc));
  return nullptr;
}

napi_value Finalize(napi_env env, napi_callback_info) {
  if (isInitialized()) MPI_Finalize();
  return nullptr;
}

napi_value Abort(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
  int32_t code = 1;
  if (argc > 0) napi_get_value_int32(env, argv[0], &code);
  if (isInitialized()) MPI_Abort(MPI_COMM_WORLD, code);
  return nullptr;
}

napi_value Module(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"init", nullptr, Init, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"allreduce", nullptr, Allreduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"iallreduce", nullptr, Iallreduce, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"test", nullptr, Test, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"wait", nullptr, Wait, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"broadcast", nullptr, Broadcast, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"barrier", nullptr, Barrier, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"finalize", nullptr, Finalize, nullptr, nullptr, nullptr, napi_default, nullptr},
      {"abort", nullptr, Abort, nullptr, nullptr, nullptr, napi_default, nullptr},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

}  // namespace

NAPI_MODULE(NODE_GYP_MODULE_NAME, Module)
