// grpo4j's own JNI library: the few libtorch calls DJL's PyTorch JNI does not expose. Built by
// scripts/setup-pytorch.sh against the same libtorch as DJL's JNI, it works on DJL tensors' native handles (a
// handle is a pointer to a heap-allocated torch::Tensor; tensors returned here are new heap tensors that DJL frees).
//
//   - what was built against: version, CUDA devices and names
//   - GPU memory of the caching allocator (current and peak), peak reset, synchronize
//   - TF32 matmuls (torch.backends.cuda.matmul.allow_tf32)
//   - a cast that autograd records (DJL's toType runs under a NoGradGuard), for bf16 mixed precision
//   - fused scaled-dot-product attention (flash / memory-efficient kernels on CUDA), differentiable
//   - a decoding step's attention on the CPU (decode_attention.cc)
//   - CUDA graphs: capture whatever DJL ops run on this thread between begin and end, replay them later
//   - in-place host -> tensor copies (DJL's set() swaps the storage, which a captured graph cannot follow)
//   - collectives through c10d (PyTorch's distributed layer, what DDP and FSDP use): a TCPStore rendezvous and a
//     Gloo (CPU) or NCCL (CUDA) process group; all-reduce and broadcast in place on DJL tensors
#include <jni.h>

#include "decode_attention.h"
#include <torch/torch.h>
#include <torch/version.h>

#include <cstring>
#include <optional>
#include <string>

#ifdef GRPO4J_C10D
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#ifdef GRPO4J_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#include <chrono>
#endif

#ifdef GRPO4J_CUDA
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <cuda_runtime_api.h>
#endif

namespace {

torch::Tensor& tensor(jlong handle) { return *reinterpret_cast<torch::Tensor*>(handle); }

jlong release(torch::Tensor t) { return reinterpret_cast<jlong>(new torch::Tensor(std::move(t))); }

void throwJava(JNIEnv* env, const std::string& msg) {
  jclass cls = env->FindClass("java/lang/IllegalStateException");
  if (cls != nullptr) env->ThrowNew(cls, msg.c_str());
}

// DJL's DataType ordinals (ai.djl.ndarray.types.DataType), as its JNI maps them, plus bfloat16 = 11
torch::ScalarType scalarType(jint ordinal) {
  switch (ordinal) {
    case 0: return torch::kFloat32;
    case 1: return torch::kFloat64;
    case 2: return torch::kFloat16;
    case 3: return torch::kUInt8;
    case 4: return torch::kInt32;
    case 5: return torch::kInt8;
    case 6: return torch::kInt64;
    case 7: return torch::kBool;
    case 11: return torch::kBFloat16;
    default: throw std::invalid_argument("unsupported DJL data type ordinal " + std::to_string(ordinal));
  }
}

#ifdef GRPO4J_CUDA
// A graph and the side stream it was captured on (capture needs a stream other than the legacy default one).
struct Graph {
  at::cuda::CUDAGraph graph;
  std::optional<c10::cuda::CUDAStream> stream;
  std::optional<c10::cuda::CUDAStream> previous;
  int device = 0;
  bool capturing = false;
};
#endif

#ifdef GRPO4J_C10D
// A process group and the store its ranks met through.
struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
};
#endif

}  // namespace

#define GRPO_TRY try {
#define GRPO_CATCH(ret)                      \
  }                                          \
  catch (const std::exception& e) {          \
    throwJava(env, e.what());                \
    return ret;                              \
  }

extern "C" {

// Bumped with every change of the functions below; NativeTorch.ABI must match, else the library is not used
JNIEXPORT jint JNICALL Java_io_grpo4j_trainer_device_NativeTorch_abiVersion(JNIEnv*, jclass) { return 4; }

// Whether this build has c10d collectives: 0 none, 1 Gloo, 2 Gloo and NCCL
JNIEXPORT jint JNICALL Java_io_grpo4j_trainer_device_NativeTorch_collectives(JNIEnv*, jclass) {
#if defined(GRPO4J_C10D) && defined(GRPO4J_NCCL)
  return 2;
#elif defined(GRPO4J_C10D)
  return 1;
#else
  return 0;
#endif
}

// Joins the process group: rank 0 serves the TCPStore at addr:port, the others connect (waiting up to timeout).
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_groupInit(JNIEnv* env, jclass, jstring backend,
    jstring addr, jint port, jint rank, jint world, jint timeoutSeconds) {
#ifdef GRPO4J_C10D
  GRPO_TRY
  const char* a = env->GetStringUTFChars(addr, nullptr);
  std::string host(a);
  env->ReleaseStringUTFChars(addr, a);
  const char* b = env->GetStringUTFChars(backend, nullptr);
  std::string kind(b);
  env->ReleaseStringUTFChars(backend, b);
  auto timeout = std::chrono::milliseconds(static_cast<int64_t>(timeoutSeconds) * 1000);
  c10d::TCPStoreOptions opts;
  opts.port = static_cast<uint16_t>(port);
  opts.isServer = rank == 0;
  opts.numWorkers = world;
  opts.timeout = timeout;
  auto* g = new Group();
  g->store = c10::make_intrusive<c10d::TCPStore>(host, opts);
  if (kind == "gloo") {
    auto o = c10d::ProcessGroupGloo::Options::create();
    o->timeout = timeout;
    o->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(host == "localhost" ? "127.0.0.1" : host));
    g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, world, o);
  } else if (kind == "nccl") {
#ifdef GRPO4J_NCCL
    auto o = c10d::ProcessGroupNCCL::Options::create();
    o->timeout = timeout;
    g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, world, o);
#else
    delete g;
    throw std::runtime_error("this build of grpo4j's library has no NCCL (scripts/setup-pytorch.sh found no nccl.h)");
#endif
  } else {
    delete g;
    throw std::runtime_error("unknown backend " + kind + " (gloo or nccl)");
  }
  return reinterpret_cast<jlong>(g);
  GRPO_CATCH(0)
#else
  throwJava(env, "this build of grpo4j's library has no c10d collectives (rebuild with scripts/setup-pytorch.sh)");
  return 0;
#endif
}

// In-place all-reduce of one tensor: op 0 = sum, 1 = max.
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_allReduce(JNIEnv* env, jclass, jlong group,
    jlong handle, jint op) {
#ifdef GRPO4J_C10D
  GRPO_TRY
  auto* g = reinterpret_cast<Group*>(group);
  std::vector<at::Tensor> ts = {tensor(handle)};
  c10d::AllreduceOptions o;
  o.reduceOp = op == 1 ? c10d::ReduceOp::MAX : c10d::ReduceOp::SUM;
  g->backend->allreduce(ts, o)->wait();
  GRPO_CATCH()
#else
  throwJava(env, "no c10d in this build");
#endif
}

// In-place broadcast of one tensor from rank root.
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_broadcast(JNIEnv* env, jclass, jlong group,
    jlong handle, jint root) {
#ifdef GRPO4J_C10D
  GRPO_TRY
  auto* g = reinterpret_cast<Group*>(group);
  std::vector<at::Tensor> ts = {tensor(handle)};
  c10d::BroadcastOptions o;
  o.rootRank = root;
  g->backend->broadcast(ts, o)->wait();
  GRPO_CATCH()
#else
  throwJava(env, "no c10d in this build");
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_barrier(JNIEnv* env, jclass, jlong group) {
#ifdef GRPO4J_C10D
  GRPO_TRY
  reinterpret_cast<Group*>(group)->backend->barrier()->wait();
  GRPO_CATCH()
#else
  throwJava(env, "no c10d in this build");
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_groupFree(JNIEnv*, jclass, jlong group) {
#ifdef GRPO4J_C10D
  delete reinterpret_cast<Group*>(group);
#endif
}

JNIEXPORT jstring JNICALL Java_io_grpo4j_trainer_device_NativeTorch_torchVersion(JNIEnv* env, jclass) {
  return env->NewStringUTF(TORCH_VERSION);
}

JNIEXPORT jboolean JNICALL Java_io_grpo4j_trainer_device_NativeTorch_builtWithCuda(JNIEnv*, jclass) {
#ifdef GRPO4J_CUDA
  return JNI_TRUE;
#else
  return JNI_FALSE;
#endif
}

JNIEXPORT jint JNICALL Java_io_grpo4j_trainer_device_NativeTorch_cudaDeviceCount(JNIEnv* env, jclass) {
  GRPO_TRY
  return static_cast<jint>(torch::cuda::device_count());
  GRPO_CATCH(0)
}

JNIEXPORT jstring JNICALL Java_io_grpo4j_trainer_device_NativeTorch_cudaDeviceName(JNIEnv* env, jclass, jint device) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  const cudaDeviceProp* p = at::cuda::getDeviceProperties(device);
  std::string s = std::string(p->name) + ", " + std::to_string(p->totalGlobalMem >> 20) + " MiB, compute " +
                  std::to_string(p->major) + "." + std::to_string(p->minor);
  return env->NewStringUTF(s.c_str());
  GRPO_CATCH(nullptr)
#else
  return env->NewStringUTF("");
#endif
}

JNIEXPORT jstring JNICALL Java_io_grpo4j_trainer_device_NativeTorch_cudaVersion(JNIEnv* env, jclass) {
#ifdef GRPO4J_CUDA
  int v = 0;
  cudaRuntimeGetVersion(&v);
  std::string s = std::to_string(v / 1000) + "." + std::to_string((v % 1000) / 10);
  return env->NewStringUTF(s.c_str());
#else
  return env->NewStringUTF("");
#endif
}

// {allocated now, allocated peak, reserved now, reserved peak} in bytes, as torch.cuda.memory_stats reports them
JNIEXPORT jlongArray JNICALL Java_io_grpo4j_trainer_device_NativeTorch_cudaMemory(JNIEnv* env, jclass, jint device) {
  jlongArray out = env->NewLongArray(4);
#ifdef GRPO4J_CUDA
  GRPO_TRY
  auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(device);
  const auto agg = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);
  jlong v[4] = {stats.allocated_bytes[agg].current, stats.allocated_bytes[agg].peak,
                stats.reserved_bytes[agg].current, stats.reserved_bytes[agg].peak};
  env->SetLongArrayRegion(out, 0, 4, v);
  GRPO_CATCH(out)
#endif
  return out;
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_cudaResetPeak(JNIEnv* env, jclass, jint device) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  c10::cuda::CUDACachingAllocator::resetPeakStats(device);
  GRPO_CATCH()
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_synchronize(JNIEnv* env, jclass, jint device) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  c10::cuda::getCurrentCUDAStream().synchronize();
  GRPO_CATCH()
#endif
}

// "highest" (fp32 matmuls in full fp32) or "high" (TF32 tensor cores), as torch.set_float32_matmul_precision
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_setFloat32MatmulPrecision(JNIEnv* env, jclass,
                                                                                         jstring jmode) {
  GRPO_TRY
  const char* c = env->GetStringUTFChars(jmode, nullptr);
  std::string mode(c);
  env->ReleaseStringUTFChars(jmode, c);
  at::globalContext().setFloat32MatmulPrecision(mode);
  GRPO_CATCH()
}

// t.to(dtype) recorded by autograd: the gradient of the cast result flows back into t, cast to t's dtype
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_castWithGrad(JNIEnv* env, jclass, jlong handle,
                                                                            jint dtype) {
  GRPO_TRY
  return release(tensor(handle).to(scalarType(dtype)));
  GRPO_CATCH(0)
}

// softmax(q k^T * scale + mask) v for q (B, H, T, D), k and v (B, Hkv, S, D); mask (B or 1, 1, T, S) additive or 0;
// causal: no mask, the lower triangle (flash kernels); gqa: Hkv divides H
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_attention(JNIEnv* env, jclass, jlong q, jlong k,
                                                                         jlong v, jlong mask, jdouble scale,
                                                                         jboolean causal, jboolean gqa) {
  GRPO_TRY
  std::optional<torch::Tensor> m;
  if (mask != 0) m = tensor(mask);
  return release(at::scaled_dot_product_attention(tensor(q), tensor(k), tensor(v), m, 0.0, causal == JNI_TRUE,
                                                  std::optional<double>(scale), gqa == JNI_TRUE));
  GRPO_CATCH(0)
}

// softmax(q k^T + bias) v for one query token per row, float32 on the CPU (see decode_attention.h)
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_decodeAttention(JNIEnv* env, jclass, jlong q,
                                                                               jlong k, jlong v, jlong bias) {
  GRPO_TRY
  torch::NoGradGuard noGrad;
  return release(grpo4j::decodeAttention(tensor(q), tensor(k), tensor(v), tensor(bias)));
  GRPO_CATCH(0)
}

// x * sigmoid(x) in one kernel (and one in backward), differentiable
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_silu(JNIEnv* env, jclass, jlong x) {
  GRPO_TRY
  return release(at::silu(tensor(x)));
  GRPO_CATCH(0)
}

namespace {
std::vector<torch::Tensor> tensors(JNIEnv* env, jlongArray handles) {
  jsize n = env->GetArrayLength(handles);
  std::vector<jlong> h(n);
  env->GetLongArrayRegion(handles, 0, n, h.data());
  std::vector<torch::Tensor> out;
  out.reserve(n);
  for (jlong x : h) out.push_back(tensor(x));
  return out;
}
}  // namespace

// sqrt(sum of squares) over all the given tensors (torch.nn.utils.clip_grad_norm_'s total norm), a 0-dim float tensor
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_totalNorm(JNIEnv* env, jclass, jlongArray ts) {
  GRPO_TRY
  torch::NoGradGuard noGrad;
  auto norms = at::_foreach_norm(tensors(env, ts), 2);
  return release(at::linalg_vector_norm(at::stack(norms), 2));
  GRPO_CATCH(0)
}

// One AdamW step over a group of parameters with one weight decay, as torch.optim.AdamW(fused=True): params, grads,
// first and second moments are lists of equal shapes (views of flat buffers are fine); step is the step number after
// this update; the gradients are divided by gradDivisor first (clipping: norm / max_norm), 1 = as they are.
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_adamw(JNIEnv* env, jclass, jlongArray params,
                                                                    jlongArray grads, jlongArray m, jlongArray v,
                                                                    jdouble step, jdouble lr, jdouble beta1,
                                                                    jdouble beta2, jdouble weightDecay, jdouble eps,
                                                                    jdouble gradDivisor) {
  GRPO_TRY
  torch::NoGradGuard noGrad;
  auto p = tensors(env, params);
  if (p.empty()) return;
  auto g = tensors(env, grads);
  auto ms = tensors(env, m);
  auto vs = tensors(env, v);
  auto opts = torch::TensorOptions().dtype(torch::kFloat32).device(p[0].device());
  // torch.optim.AdamW increments its step tensors, then hands them to the kernel
  std::vector<torch::Tensor> steps(p.size(), torch::full({}, step, opts));
  std::optional<torch::Tensor> scale;
  if (gradDivisor != 1.0) scale = torch::full({}, gradDivisor, opts);
  at::_fused_adamw_(p, g, ms, vs, {}, steps, lr, beta1, beta2, weightDecay, eps, false, false, scale, std::nullopt);
  GRPO_CATCH()
}

// Copies a direct buffer's bytes into the tensor's own storage (same address afterwards), in its dtype and shape
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_copyFromHost(JNIEnv* env, jclass, jlong handle,
                                                                           jobject buffer) {
  GRPO_TRY
  torch::Tensor& t = tensor(handle);
  void* data = env->GetDirectBufferAddress(buffer);
  jlong capacity = env->GetDirectBufferCapacity(buffer);
  if (data == nullptr || capacity < static_cast<jlong>(t.nbytes())) {
    throw std::invalid_argument("copyFromHost: the buffer holds " + std::to_string(capacity) +
                                " bytes, the tensor needs " + std::to_string(t.nbytes()));
  }
  torch::NoGradGuard noGrad;
  auto src = torch::from_blob(data, t.sizes(), torch::TensorOptions().dtype(t.dtype()));
  t.copy_(src, false);
  GRPO_CATCH()
}

// dst.copy_(src) in place (dst keeps its storage: what a captured graph reads stays where it was)
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_copyInto(JNIEnv* env, jclass, jlong dst, jlong src) {
  GRPO_TRY
  torch::NoGradGuard noGrad;
  tensor(dst).copy_(tensor(src), false);
  GRPO_CATCH()
}

// A graph's life: graphNew makes a side stream current (capture cannot use the legacy default stream) so that the
// caller can warm up there (cuBLAS workspaces, lazy inits), graphCapture starts recording, graphEnd stops it and
// returns to the caller's stream. Replays run on whatever stream is current then.
JNIEXPORT jlong JNICALL Java_io_grpo4j_trainer_device_NativeTorch_graphNew(JNIEnv* env, jclass, jint device) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  auto* g = new Graph();
  g->device = device;
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(device));
  g->previous = c10::cuda::getCurrentCUDAStream(device);
  g->stream = c10::cuda::getStreamFromPool(false, static_cast<c10::DeviceIndex>(device));
  g->previous->synchronize();  // the side stream starts after everything already queued
  c10::cuda::setCurrentCUDAStream(*g->stream);
  return reinterpret_cast<jlong>(g);
  GRPO_CATCH(0)
#else
  throwJava(env, "CUDA graphs need a CUDA build of libtorch");
  return 0;
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_graphCapture(JNIEnv* env, jclass, jlong handle) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  auto* g = reinterpret_cast<Graph*>(handle);
  g->stream->synchronize();
  // capture_begin reads the current device's stream and pool: on gpu(1) the thread's current device is still 0
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(g->device));
  // thread-local capture: other threads (reward workers) may still use CUDA meanwhile
  g->graph.capture_begin({0, 0}, cudaStreamCaptureModeThreadLocal);
  g->capturing = true;
  GRPO_CATCH()
#endif
}

// Ends the capture (if one is running; ok = false after a failed one) and returns to the caller's stream
JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_graphEnd(JNIEnv* env, jclass, jlong handle,
                                                                       jboolean ok) {
#ifdef GRPO4J_CUDA
  auto* g = reinterpret_cast<Graph*>(handle);
  c10::cuda::CUDAGuard guard(static_cast<c10::DeviceIndex>(g->device));
  std::string error;
  if (g->capturing) {
    g->capturing = false;
    try {
      g->graph.capture_end();
    } catch (const std::exception& e) {
      error = e.what();
    }
  }
  try {
    g->stream->synchronize();
  } catch (const std::exception& e) {
    if (error.empty()) error = e.what();
  }
  c10::cuda::setCurrentCUDAStream(*g->previous);
  if (!error.empty() && ok == JNI_TRUE) throwJava(env, error);
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_graphReplay(JNIEnv* env, jclass, jlong handle) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  reinterpret_cast<Graph*>(handle)->graph.replay();
  GRPO_CATCH()
#endif
}

JNIEXPORT void JNICALL Java_io_grpo4j_trainer_device_NativeTorch_graphFree(JNIEnv* env, jclass, jlong handle) {
#ifdef GRPO4J_CUDA
  GRPO_TRY
  delete reinterpret_cast<Graph*>(handle);
  GRPO_CATCH()
#endif
}

}  // extern "C"
