// A float32 MatMul for ONNX Runtime's CPU provider, as a custom operator library: a prototype to measure what a
// kernel made for decoding's few-row calls would save (docs/benchmarks.md, "A float32 kernel of our own").
// Not part of the build and not shipped.
//
//   g++ -O3 -march=native -shared -fPIC panel_matmul.cc -o libspecula_panel.so -lpthread -ldl      (needs AVX-512F)
//   g++ -O3 -march=native -DPANEL_CHECK panel_matmul.cc -o panel_check -lpthread -ldl && ./panel_check
//   (PANEL_THREADS=2 in the environment: a second thread, below)
//
// Operator dev.specula.panel:PanelMatMul(X [.., K], P [N/16, K, 16]) -> Y [.., N] = X W, where P is the weight
// W [K, N] in panels of 16 columns (P[j, k, c] = W[k, 16 j + c]; panel_ab.py writes them). Each output row is 16
// lanes at a time one vector accumulated over k in order, with the same FMAs whatever the number of rows in the
// call, so a token's logits do not depend on how many tokens its call verifies (lossless verification needs that;
// ONNX Runtime's own MatMul gives the same property, this keeps it). Four panels (64 columns) are read together,
// the next ones prefetched PF k-steps ahead: the weights stream at the memory's speed for 1 to 4 rows.
#include <immintrin.h>
#include <stdint.h>
#include <stdio.h>

#include <dlfcn.h>

#include <atomic>
#include <thread>
#include <stdlib.h>
#include <string.h>

#ifndef PF
#define PF 8
#endif

// ---- ONNX Runtime's C ABI, the few entries used (API version 1 block of OrtApi, which is frozen) ----
extern "C" {
struct OrtStatus;
struct OrtApi;
struct OrtValue;
struct OrtKernelInfo;
struct OrtKernelContext;
struct OrtSessionOptions;
struct OrtCustomOpDomain;
struct OrtTensorTypeAndShapeInfo;
struct OrtApiBase {
  const OrtApi* (*GetApi)(uint32_t version);
  const char* (*GetVersionString)(void);
};
struct OrtCustomOp {  // version 13 of the struct
  uint32_t version;
  void* (*CreateKernel)(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo*);
  const char* (*GetName)(const OrtCustomOp*);
  const char* (*GetExecutionProviderType)(const OrtCustomOp*);
  int (*GetInputType)(const OrtCustomOp*, size_t);  // ONNXTensorElementDataType: 1 = float
  size_t (*GetInputTypeCount)(const OrtCustomOp*);
  int (*GetOutputType)(const OrtCustomOp*, size_t);
  size_t (*GetOutputTypeCount)(const OrtCustomOp*);
  void (*KernelCompute)(void*, OrtKernelContext*);
  void (*KernelDestroy)(void*);
  int (*GetInputCharacteristic)(const OrtCustomOp*, size_t);  // 0 = required
  int (*GetOutputCharacteristic)(const OrtCustomOp*, size_t);
  int (*GetInputMemoryType)(const OrtCustomOp*, size_t);  // 0 = the provider's default
};
}

namespace abi {  // OrtApi entries by their index in the table
template <typename F>
F entry(const OrtApi* api, int index) { return reinterpret_cast<F>(reinterpret_cast<void* const*>(api)[index]); }
const OrtApi* api;
OrtStatus* CreateCustomOpDomain(const char* name, OrtCustomOpDomain** out) {
  return entry<OrtStatus* (*)(const char*, OrtCustomOpDomain**)>(api, 26)(name, out);
}
OrtStatus* CustomOpDomain_Add(OrtCustomOpDomain* domain, const OrtCustomOp* op) {
  return entry<OrtStatus* (*)(OrtCustomOpDomain*, const OrtCustomOp*)>(api, 27)(domain, op);
}
OrtStatus* AddCustomOpDomain(OrtSessionOptions* options, OrtCustomOpDomain* domain) {
  return entry<OrtStatus* (*)(OrtSessionOptions*, OrtCustomOpDomain*)>(api, 28)(options, domain);
}
OrtStatus* GetTensorMutableData(OrtValue* value, void** out) {
  return entry<OrtStatus* (*)(OrtValue*, void**)>(api, 51)(value, out);
}
OrtStatus* GetDimensionsCount(const OrtTensorTypeAndShapeInfo* info, size_t* out) {
  return entry<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, size_t*)>(api, 61)(info, out);
}
OrtStatus* GetDimensions(const OrtTensorTypeAndShapeInfo* info, int64_t* dims, size_t count) {
  return entry<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int64_t*, size_t)>(api, 62)(info, dims, count);
}
OrtStatus* GetTensorTypeAndShape(const OrtValue* value, OrtTensorTypeAndShapeInfo** out) {
  return entry<OrtStatus* (*)(const OrtValue*, OrtTensorTypeAndShapeInfo**)>(api, 65)(value, out);
}
OrtStatus* KernelContext_GetInput(const OrtKernelContext* context, size_t index, const OrtValue** out) {
  return entry<OrtStatus* (*)(const OrtKernelContext*, size_t, const OrtValue**)>(api, 90)(context, index, out);
}
OrtStatus* KernelContext_GetOutput(OrtKernelContext* context, size_t index, const int64_t* dims, size_t count,
                                   OrtValue** out) {
  return entry<OrtStatus* (*)(OrtKernelContext*, size_t, const int64_t*, size_t, OrtValue**)>(api, 91)(
      context, index, dims, count, out);
}
void ReleaseTensorTypeAndShapeInfo(OrtTensorTypeAndShapeInfo* info) {
  entry<void (*)(OrtTensorTypeAndShapeInfo*)>(api, 99)(info);
}
}  // namespace abi

// ---- the kernel ----

// MC rows of X [MC, K] against G panels [G][K][16] from p: Y [MC, 16 G] at y (row stride N)
template <int MC, int G>
static inline void panels(const float* x, int64_t K, const float* p, float* y, int64_t N, const float* next) {
  __m512 acc[MC][G];
#pragma GCC unroll 4
  for (int m = 0; m < MC; m++)
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) acc[m][g] = _mm512_setzero_ps();
  const int64_t panel = K * 16;
  for (int64_t k = 0; k < K; k++) {
    int64_t ahead = k + PF;  // one cache line a panel a step: this group's, then the next group's first ones
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      const float* line = ahead < K ? p + g * panel + ahead * 16 : (next ? next + g * panel + (ahead - K) * 16 : 0);
      if (line) _mm_prefetch((const char*)line, _MM_HINT_T0);
    }
    __m512 w[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) w[g] = _mm512_loadu_ps(p + g * panel + k * 16);
#pragma GCC unroll 4
    for (int m = 0; m < MC; m++) {
      __m512 xk = _mm512_set1_ps(x[m * K + k]);
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) acc[m][g] = _mm512_fmadd_ps(xk, w[g], acc[m][g]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < MC; m++)
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) _mm512_storeu_ps(y + m * N + g * 16, acc[m][g]);
}

// every row of X, four at a time, against G panels
template <int G>
static void all_rows(const float* x, int64_t M, int64_t K, const float* p, float* y, int64_t N, const float* next) {
  int64_t m = 0;
  for (; m + 4 <= M; m += 4) panels<4, G>(x + m * K, K, p, y + m * N, N, next);
  switch (M - m) {
    case 3: panels<3, G>(x + m * K, K, p, y + m * N, N, next); break;
    case 2: panels<2, G>(x + m * K, K, p, y + m * N, N, next); break;
    case 1: panels<1, G>(x + m * K, K, p, y + m * N, N, next); break;
  }
}

// panels [begin, end) of Y [M, N] = X [M, K] W [K, N], W as panels P [N/16, K, 16]; begin a multiple of 4
static void panel_range(const float* X, const float* P, float* Y, int64_t M, int64_t K, int64_t N, int64_t begin,
                        int64_t end) {
  int64_t j = begin;
  for (; j + 4 <= end; j += 4) {
    const float* next = j + 8 <= end ? P + (j + 4) * K * 16 : 0;
    all_rows<4>(X, M, K, P + j * K * 16, Y + j * 16, N, next);
  }
  for (; j < end; j++) all_rows<1>(X, M, K, P + j * K * 16, Y + j * 16, N, 0);
}

// With PANEL_THREADS=2 in the environment, a second thread that spins for work (a prototype's: it never sleeps and
// never ends) takes the first half of the panels and the caller the rest; run ONNX Runtime with one intra-op thread
// then. Which thread computes a panel changes nothing in it.
static int threads = 1;
static std::atomic<long> posted{0}, finished{0};
static struct { const float *X, *P; float* Y; int64_t M, K, N, end; } job;
static void worker() {
  long seen = 0;
  for (;;) {
    while (posted.load(std::memory_order_acquire) == seen) _mm_pause();
    seen = posted.load(std::memory_order_acquire);
    panel_range(job.X, job.P, job.Y, job.M, job.K, job.N, 0, job.end);
    finished.store(seen, std::memory_order_release);
  }
}

static void panel_matmul(const float* X, const float* P, float* Y, int64_t M, int64_t K, int64_t N) {
  int64_t count = N / 16;
  if (threads < 2 || count < 8) {
    panel_range(X, P, Y, M, K, N, 0, count);
    return;
  }
  int64_t split = (count / 2) / 4 * 4;
  job.X = X; job.P = P; job.Y = Y; job.M = M; job.K = K; job.N = N; job.end = split;
  long ticket = posted.load(std::memory_order_relaxed) + 1;
  posted.store(ticket, std::memory_order_release);
  panel_range(X, P, Y, M, K, N, split, count);
  while (finished.load(std::memory_order_acquire) != ticket) _mm_pause();
}

// ---- the operator ----

static void fail(const char* what) {
  fprintf(stderr, "PanelMatMul: %s\n", what);
  abort();
}

static void compute(void*, OrtKernelContext* context) {
  const OrtValue* xv = 0;
  const OrtValue* pv = 0;
  if (abi::KernelContext_GetInput(context, 0, &xv) || abi::KernelContext_GetInput(context, 1, &pv)) fail("inputs");
  int64_t xd[8], pd[8];
  size_t xn = 0, pn = 0;
  OrtTensorTypeAndShapeInfo* info;
  abi::GetTensorTypeAndShape(xv, &info);
  abi::GetDimensionsCount(info, &xn);
  if (xn < 1 || xn > 8) fail("X must have 1 to 8 dimensions");
  abi::GetDimensions(info, xd, xn);
  abi::ReleaseTensorTypeAndShapeInfo(info);
  abi::GetTensorTypeAndShape(pv, &info);
  abi::GetDimensionsCount(info, &pn);
  if (pn != 3) fail("P must be [N/16, K, 16]");
  abi::GetDimensions(info, pd, pn);
  abi::ReleaseTensorTypeAndShapeInfo(info);
  int64_t K = xd[xn - 1], N = pd[0] * 16, M = 1;
  if (pd[1] != K || pd[2] != 16) fail("P must be [N/16, K, 16] with X's K");
  for (size_t i = 0; i + 1 < xn; i++) M *= xd[i];
  int64_t yd[8];
  memcpy(yd, xd, sizeof(int64_t) * xn);
  yd[xn - 1] = N;
  OrtValue* yv = 0;
  if (abi::KernelContext_GetOutput(context, 0, yd, xn, &yv)) fail("output");
  void *x, *p, *y;
  abi::GetTensorMutableData(const_cast<OrtValue*>(xv), &x);
  abi::GetTensorMutableData(const_cast<OrtValue*>(pv), &p);
  abi::GetTensorMutableData(yv, &y);
  panel_matmul((const float*)x, (const float*)p, (float*)y, M, K, N);
}

static void* create_kernel(const OrtCustomOp*, const OrtApi*, const OrtKernelInfo*) { return (void*)1; }
static const char* name(const OrtCustomOp*) { return "PanelMatMul"; }
static const char* provider(const OrtCustomOp*) { return "CPUExecutionProvider"; }
static int float_type(const OrtCustomOp*, size_t) { return 1; }
static size_t two(const OrtCustomOp*) { return 2; }
static size_t one(const OrtCustomOp*) { return 1; }
static void destroy(void*) {}
static int zero(const OrtCustomOp*, size_t) { return 0; }

static OrtCustomOp op;

static void start_threads() {
  static bool started = false;
  const char* wanted = getenv("PANEL_THREADS");
  if (!started && wanted && atoi(wanted) > 1) {
    Dl_info self;  // the worker runs this library's code until the process ends: keep it loaded
    if (dladdr((void*)&start_threads, &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
    threads = 2;
    std::thread(worker).detach();
  }
  started = true;
}

extern "C" OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  abi::api = base->GetApi(13);
  start_threads();
  op.version = 13;
  op.CreateKernel = create_kernel;
  op.GetName = name;
  op.GetExecutionProviderType = provider;
  op.GetInputType = float_type;
  op.GetInputTypeCount = two;
  op.GetOutputType = float_type;
  op.GetOutputTypeCount = one;
  op.KernelCompute = compute;
  op.KernelDestroy = destroy;
  op.GetInputCharacteristic = zero;
  op.GetOutputCharacteristic = zero;
  op.GetInputMemoryType = zero;
  OrtCustomOpDomain* domain;
  OrtStatus* status = abi::CreateCustomOpDomain("dev.specula.panel", &domain);
  if (!status) status = abi::CustomOpDomain_Add(domain, &op);
  if (!status) status = abi::AddCustomOpDomain(options, domain);
  return status;
}

#ifdef PANEL_CHECK
// Row independence (every row of calls of 1 to 8 rows bit for bit the row alone) and the weights' streaming speed
// over the embedded target's 31 matrices (44 MB: past the caches), calls of 1, 2, 4 and 8 rows.
#include <chrono>
#include <vector>
int main() {
  int differing = 0;
  for (int64_t K : {384, 1024, 100})
    for (int64_t N : {640, 4096, 48}) {
      std::vector<float> p(K * N), x(8 * K), all(8 * N), alone(N);
      for (auto& v : p) v = (rand() % 2001 - 1000) * 1e-3f;
      for (auto& v : x) v = (rand() % 2001 - 1000) * 1e-3f;
      for (int M = 1; M <= 8; M++) {
        panel_matmul(x.data(), p.data(), all.data(), M, K, N);
        for (int m = 0; m < M; m++) {
          panel_matmul(x.data() + m * K, p.data(), alone.data(), 1, K, N);
          differing += memcmp(alone.data(), all.data() + m * N, N * sizeof(float)) != 0;
        }
      }
    }
  printf("rows of calls of 1-8 rows that differ from the row alone: %d\n", differing);
  start_threads();
  if (threads == 2) {  // the same products on two threads against one
    int64_t K = 896, N = 4864;
    std::vector<float> p(K * N), x(4 * K), one(4 * N), two(4 * N);
    for (auto& v : p) v = (rand() % 2001 - 1000) * 1e-3f;
    for (auto& v : x) v = (rand() % 2001 - 1000) * 1e-3f;
    threads = 1;
    panel_matmul(x.data(), p.data(), one.data(), 4, K, N);
    threads = 2;
    panel_matmul(x.data(), p.data(), two.data(), 4, K, N);
    int moved = memcmp(one.data(), two.data(), one.size() * sizeof(float)) != 0;
    differing += moved;
    printf("two threads against one, a [4, 896] x [896, 4864] product: %s\n", moved ? "DIFFERENT" : "the same");
  }
  struct Matrix { int64_t K, N; std::vector<float> p; };
  std::vector<Matrix> matrices;
  const int64_t layer[5][2] = {{384, 640}, {384, 384}, {384, 1024}, {384, 1024}, {1024, 384}};
  for (int l = 0; l < 6; l++)
    for (auto& s : layer) matrices.push_back({s[0], s[1], std::vector<float>(s[0] * s[1])});
  matrices.push_back({384, 4096, std::vector<float>(384 * 4096)});
  double bytes = 0;
  for (auto& w : matrices) {
    for (auto& v : w.p) v = (rand() % 1000) * 1e-3f;
    bytes += w.p.size() * sizeof(float);
  }
  for (int M : {1, 2, 4, 8}) {
    std::vector<float> x(M * 1024, 0.5f), y(M * 4096);
    double best = 1e9;
    for (int trial = 0; trial < 5; trial++) {
      auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < 50; i++)
        for (auto& w : matrices) panel_matmul(x.data(), w.p.data(), y.data(), M, w.K, w.N);
      double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 50;
      best = s < best ? s : best;
    }
    printf("%d row(s): %.3f ms for the 31 matrices (%.1f MB), %.1f GB/s\n", M, best * 1e3, bytes / 1e6,
           bytes / best / 1e9);
  }
  return differing != 0;
}
#endif
