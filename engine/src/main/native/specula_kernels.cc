// specula_kernels.cc: the engine's own float32 MatMul for ONNX Runtime's CPU provider, as a custom-operator library.
//
// Built by Maven, the engine's `native-kernels` profile (see README.md next to this file), with exactly
//   g++ -O3 -std=c++17 -shared -fPIC -fvisibility=hidden specula_kernels.cc -o libspecula_kernels.so -ldl
// and checked by hand with
//   g++ -O3 -std=c++17 -DSPECULA_KERNELS_CHECK specula_kernels.cc -o /tmp/kcheck -ldl -lpthread && /tmp/kcheck
// No -march flag: the library loads on any x86-64 Linux. Each vector function carries its own target attribute
// (AVX-512F, or AVX2 + FMA) and RegisterCustomOps picks one set with __builtin_cpu_supports; SPECULA_KERNELS_ISA=avx2
// in the environment forces the AVX2 set (for tests on AVX-512 machines), =avx512 insists on AVX-512F.
//
// Operator dev.specula.kernels:PanelMatMul(X [.., K] float, P [N/16, K, 16] float) -> Y [.., N] float, Y = X W, where
// P holds the weight W [K, N] in panels of 16 columns: P[j, k, c] = W[k, 16 j + c].
//
// The contract, which lossless speculative decoding relies on: every output element is
//   acc = 0; for k = 0 .. K-1: acc = fma(X[m, k], W[k, n], acc); Y[m, n] = acc
// in float32, one fused multiply-add per k, k in order, whatever the number of rows in the call, the row or K
// blocking, the thread split or the ISA. So a row's result never depends on the rows computed with it (a token's
// logits do not depend on how many tokens its call verifies) and AVX2 and AVX-512 machines agree bit for bit. A panel
// is one __m512 (AVX-512) or two __m256 (AVX2) a row, each lane a column's own accumulator; a K block stores its
// partial sums in Y and the next reloads them, which is exact.
//
// ABI: no ONNX Runtime header is needed. This file declares the few things it uses itself: OrtApiBase, OrtCustomOp
// (struct version 16: CreateKernelV2 and KernelComputeV2, whose statuses carry errors) and the OrtApi entries by their
// index in the table. ONNX Runtime only ever appends to that table, so an index, once released, never changes. The
// library asks for API version 17 (ONNX Runtime 1.17: KernelContext_ParallelFor, which lends ONNX Runtime's intra-op
// thread pool). It never prints, never aborts and keeps nothing mutable between calls: Compute is reentrant.
#include <dlfcn.h>
#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define SPECULA_EXPORT extern "C" __attribute__((visibility("default")))
#define SPECULA_AVX512 __attribute__((target("avx512f")))
#define SPECULA_AVX2 __attribute__((target("avx2,fma")))

// ---- ONNX Runtime's C ABI: the few declarations used ----

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
// Enums (ONNXTensorElementDataType, OrtCustomOpInputOutputCharacteristic, OrtMemType) are ints in the ABI.
struct OrtCustomOp {  // the members up to struct version 16, in ONNX Runtime's order
  uint32_t version;
  void* (*CreateKernel)(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info);
  const char* (*GetName)(const OrtCustomOp* op);
  const char* (*GetExecutionProviderType)(const OrtCustomOp* op);
  int (*GetInputType)(const OrtCustomOp* op, size_t index);
  size_t (*GetInputTypeCount)(const OrtCustomOp* op);
  int (*GetOutputType)(const OrtCustomOp* op, size_t index);
  size_t (*GetOutputTypeCount)(const OrtCustomOp* op);
  void (*KernelCompute)(void* kernel, OrtKernelContext* context);
  void (*KernelDestroy)(void* kernel);
  int (*GetInputCharacteristic)(const OrtCustomOp* op, size_t index);
  int (*GetOutputCharacteristic)(const OrtCustomOp* op, size_t index);
  int (*GetInputMemoryType)(const OrtCustomOp* op, size_t index);
  int (*GetVariadicInputMinArity)(const OrtCustomOp* op);
  int (*GetVariadicInputHomogeneity)(const OrtCustomOp* op);
  int (*GetVariadicOutputMinArity)(const OrtCustomOp* op);
  int (*GetVariadicOutputHomogeneity)(const OrtCustomOp* op);
  OrtStatus* (*CreateKernelV2)(const OrtCustomOp* op, const OrtApi* api, const OrtKernelInfo* info, void** kernel);
  OrtStatus* (*KernelComputeV2)(void* kernel, OrtKernelContext* context);
};
}

namespace {

constexpr int kOrtFail = 1;             // OrtErrorCode ORT_FAIL
constexpr int kOrtInvalidArgument = 2;  // OrtErrorCode ORT_INVALID_ARGUMENT
constexpr int kFloat = 1;               // ONNXTensorElementDataType FLOAT

// OrtApi entries by their index in the table (append-only, so stable)
template <typename F>
F entry(const OrtApi* api, int index) {
  return reinterpret_cast<F>(reinterpret_cast<void* const*>(api)[index]);
}
OrtStatus* CreateStatus(const OrtApi* api, int code, const char* message) {
  return entry<OrtStatus* (*)(int, const char*)>(api, 0)(code, message);
}
OrtStatus* CreateCustomOpDomain(const OrtApi* api, const char* name, OrtCustomOpDomain** out) {
  return entry<OrtStatus* (*)(const char*, OrtCustomOpDomain**)>(api, 26)(name, out);
}
OrtStatus* CustomOpDomain_Add(const OrtApi* api, OrtCustomOpDomain* domain, const OrtCustomOp* op) {
  return entry<OrtStatus* (*)(OrtCustomOpDomain*, const OrtCustomOp*)>(api, 27)(domain, op);
}
OrtStatus* AddCustomOpDomain(const OrtApi* api, OrtSessionOptions* options, OrtCustomOpDomain* domain) {
  return entry<OrtStatus* (*)(OrtSessionOptions*, OrtCustomOpDomain*)>(api, 28)(options, domain);
}
OrtStatus* GetTensorMutableData(const OrtApi* api, OrtValue* value, void** out) {
  return entry<OrtStatus* (*)(OrtValue*, void**)>(api, 51)(value, out);
}
OrtStatus* GetTensorElementType(const OrtApi* api, const OrtTensorTypeAndShapeInfo* info, int* out) {
  return entry<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int*)>(api, 60)(info, out);
}
OrtStatus* GetDimensionsCount(const OrtApi* api, const OrtTensorTypeAndShapeInfo* info, size_t* out) {
  return entry<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, size_t*)>(api, 61)(info, out);
}
OrtStatus* GetDimensions(const OrtApi* api, const OrtTensorTypeAndShapeInfo* info, int64_t* dims, size_t count) {
  return entry<OrtStatus* (*)(const OrtTensorTypeAndShapeInfo*, int64_t*, size_t)>(api, 62)(info, dims, count);
}
OrtStatus* GetTensorTypeAndShape(const OrtApi* api, const OrtValue* value, OrtTensorTypeAndShapeInfo** out) {
  return entry<OrtStatus* (*)(const OrtValue*, OrtTensorTypeAndShapeInfo**)>(api, 65)(value, out);
}
OrtStatus* KernelContext_GetInput(const OrtApi* api, const OrtKernelContext* context, size_t index,
                                  const OrtValue** out) {
  return entry<OrtStatus* (*)(const OrtKernelContext*, size_t, const OrtValue**)>(api, 90)(context, index, out);
}
OrtStatus* KernelContext_GetOutput(const OrtApi* api, OrtKernelContext* context, size_t index, const int64_t* dims,
                                   size_t count, OrtValue** out) {
  return entry<OrtStatus* (*)(OrtKernelContext*, size_t, const int64_t*, size_t, OrtValue**)>(api, 91)(
      context, index, dims, count, out);
}
void ReleaseStatus(const OrtApi* api, OrtStatus* status) { entry<void (*)(OrtStatus*)>(api, 93)(status); }
void ReleaseTensorTypeAndShapeInfo(const OrtApi* api, OrtTensorTypeAndShapeInfo* info) {
  entry<void (*)(OrtTensorTypeAndShapeInfo*)>(api, 99)(info);
}
OrtStatus* KernelContext_ParallelFor(const OrtApi* api, const OrtKernelContext* context, void (*fn)(void*, size_t),
                                     size_t total, size_t batches, void* data) {
  return entry<OrtStatus* (*)(const OrtKernelContext*, void (*)(void*, size_t), size_t, size_t, void*)>(api, 274)(
      context, fn, total, batches, data);
}

// ---- the tiles: R rows of X against G panels, over one K block ----

constexpr int kPrefetchSteps = 8;  // few-row tiles prefetch a cache line a panel this many k-steps ahead
constexpr int kMaxTileRows = 6;

struct Tile {          // Y [R, 16 G] (+)= X [R, kn] . panels [G][kn][16]
  const float* x;      // X's first row at the block's first k (row stride ldx = K)
  const float* p;      // the first panel at the block's first k (panel stride ldp = 16 K)
  float* y;            // Y's first row at the tile's first column (row stride ldy = N)
  const float* next;   // few-row tiles: the next tile's panels at k = 0, prefetched as this one ends, or null
  int64_t ldx, ldp, ldy;
  int64_t kn;          // the block's k-steps
  bool accumulate;     // a later K block: start from the partial sums in Y, not from 0
};
using TileFn = void (*)(const Tile&);

// One cache line of each of the G panels, kPrefetchSteps k-steps ahead: this tile's, then the next tile's first
// lines (only where those lie inside the next tile's own panels).
template <int G>
__attribute__((always_inline)) inline void prefetch(const Tile& t, int64_t k) {
  const int64_t ahead = k + kPrefetchSteps;
  const float* base = t.p + ahead * 16;
  if (ahead >= t.kn) {
    if (!t.next || ahead - t.kn >= t.kn) return;
    base = t.next + (ahead - t.kn) * 16;
  }
#pragma GCC unroll 4
  for (int g = 0; g < G; g++) _mm_prefetch(reinterpret_cast<const char*>(base + g * t.ldp), _MM_HINT_T0);
}

// AVX-512F: a panel is one __m512 a row
template <int R, int G, bool PF>
SPECULA_AVX512 void tile_avx512(const Tile& t) {
  __m512 acc[R][G];
  const float* xr[R];
#pragma GCC unroll 8
  for (int m = 0; m < R; m++) {
    xr[m] = t.x + m * t.ldx;
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
      acc[m][g] = t.accumulate ? _mm512_loadu_ps(t.y + m * t.ldy + g * 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < t.kn; k++) {
    if (PF) prefetch<G>(t, k);
    __m512 w[G];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) w[g] = _mm512_loadu_ps(t.p + g * t.ldp + k * 16);
#pragma GCC unroll 8
    for (int m = 0; m < R; m++) {
      const __m512 xk = _mm512_set1_ps(xr[m][k]);
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) acc[m][g] = _mm512_fmadd_ps(xk, w[g], acc[m][g]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < R; m++)
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) _mm512_storeu_ps(t.y + m * t.ldy + g * 16, acc[m][g]);
}

// AVX2 + FMA: a panel is two __m256 a row (lanes 0-7, 8-15), each lane the same FMA chain as AVX-512's
template <int R, int G, bool PF>
SPECULA_AVX2 void tile_avx2(const Tile& t) {
  __m256 acc[R][G][2];
  const float* xr[R];
#pragma GCC unroll 8
  for (int m = 0; m < R; m++) {
    xr[m] = t.x + m * t.ldx;
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++)
        acc[m][g][h] = t.accumulate ? _mm256_loadu_ps(t.y + m * t.ldy + g * 16 + h * 8) : _mm256_setzero_ps();
  }
  for (int64_t k = 0; k < t.kn; k++) {
    if (PF) prefetch<G>(t, k);
    __m256 w[G][2];
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) w[g][h] = _mm256_loadu_ps(t.p + g * t.ldp + k * 16 + h * 8);
#pragma GCC unroll 8
    for (int m = 0; m < R; m++) {
      const __m256 xk = _mm256_broadcast_ss(xr[m] + k);
#pragma GCC unroll 4
      for (int g = 0; g < G; g++)
#pragma GCC unroll 2
        for (int h = 0; h < 2; h++) acc[m][g][h] = _mm256_fmadd_ps(xk, w[g][h], acc[m][g][h]);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < R; m++)
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) _mm256_storeu_ps(t.y + m * t.ldy + g * 16 + h * 8, acc[m][g][h]);
}

// ---- the ISAs' tile sets ----

struct Shape {
  int rows, panels;  // a tile's rows (the most) and panels (1, 2 or 4: a divisor of a group's 4)
};
struct Kernels {
  const char* name;
  Shape few;                              // few-row path: whole-K tiles, prefetching
  Shape block;                            // blocked path: K-block tiles
  TileFn few_tile[kMaxTileRows + 1];      // [r]: r rows x few.panels
  TileFn few_tail[kMaxTileRows + 1];      // [r]: r rows x 1 (the tail panels after the last group of 4)
  TileFn block_tile[kMaxTileRows + 1];    // [r]: r rows x block.panels
  TileFn block_tail[kMaxTileRows + 1];    // [r]: r rows x 1
};

// AVX-512: 4 rows x 4 panels for few rows (16 accumulators, the prototype's), 6 x 4 blocked (24 of the 32 zmm)
const Kernels kAvx512 = {
    "avx512f",
    {4, 4},
    {6, 4},
    {nullptr, tile_avx512<1, 4, true>, tile_avx512<2, 4, true>, tile_avx512<3, 4, true>, tile_avx512<4, 4, true>},
    {nullptr, tile_avx512<1, 1, true>, tile_avx512<2, 1, true>, tile_avx512<3, 1, true>, tile_avx512<4, 1, true>},
    {nullptr, tile_avx512<1, 4, false>, tile_avx512<2, 4, false>, tile_avx512<3, 4, false>, tile_avx512<4, 4, false>,
     tile_avx512<5, 4, false>, tile_avx512<6, 4, false>},
    {nullptr, tile_avx512<1, 1, false>, tile_avx512<2, 1, false>, tile_avx512<3, 1, false>, tile_avx512<4, 1, false>,
     tile_avx512<5, 1, false>, tile_avx512<6, 1, false>},
};

// AVX2 (16 ymm): 2 rows x 2 panels for few rows (8 accumulators + 4 weights), 6 rows x 1 panel blocked (12 + 2)
const Kernels kAvx2 = {
    "avx2",
    {2, 2},
    {6, 1},
    {nullptr, tile_avx2<1, 2, true>, tile_avx2<2, 2, true>},
    {nullptr, tile_avx2<1, 1, true>, tile_avx2<2, 1, true>},
    {nullptr, tile_avx2<1, 1, false>, tile_avx2<2, 1, false>, tile_avx2<3, 1, false>, tile_avx2<4, 1, false>,
     tile_avx2<5, 1, false>, tile_avx2<6, 1, false>},
    {nullptr, tile_avx2<1, 1, false>, tile_avx2<2, 1, false>, tile_avx2<3, 1, false>, tile_avx2<4, 1, false>,
     tile_avx2<5, 1, false>, tile_avx2<6, 1, false>},
};

// ---- one call's work, in tasks ----

constexpr int64_t kFewRows = 8;                    // M <= 8 (decoding): the few-row path
constexpr int64_t kBlockK = 512;                   // blocked path: k-steps a block (Y holds the partial sums)
constexpr int64_t kBlockRows = 48;                 // blocked path: rows a block (X [48, 512]: 96 KB, in L2)
constexpr int64_t kTaskRows = 288;                 // blocked path: at most this many rows a task
constexpr int64_t kTaskWeightBytes = 256 << 10;    // a task's weights: at least 256 KB (tiny matmuls: one task)

int64_t min64(int64_t a, int64_t b) { return a < b ? a : b; }
int64_t max64(int64_t a, int64_t b) { return a > b ? a : b; }
int64_t ceil_div(int64_t a, int64_t b) { return (a + b - 1) / b; }

// Y [M, N] = X [M, K] W [K, N], W as panels P [N/16, K, 16]. The panels are counted in units: the groups of 4
// panels (64 columns), then the tail panels one by one. A task is a range of rows times a range of units; which
// task computes an element, and in which order, changes nothing in it.
struct Job {
  const Kernels* kern;
  const float* x;  // X [M, K]
  const float* p;  // P [N/16, K, 16]
  float* y;        // Y [M, N]
  int64_t M, K, N;
  bool few;                        // the few-row path (M <= 8), else the blocked path
  int64_t groups, units;           // N/16/4 groups of 4 panels; groups + the tail panels
  int64_t units_per_task, unit_tasks;
  int64_t rows_per_task, row_tasks;
  int64_t tasks() const { return unit_tasks * row_tasks; }
};

// the first panel of unit u (u = units: N/16, the end)
int64_t unit_panel(const Job& job, int64_t u) { return u < job.groups ? 4 * u : 3 * job.groups + u; }

Job plan(const Kernels* kern, const float* x, const float* p, float* y, int64_t M, int64_t K, int64_t N) {
  Job job{kern, x, p, y, M, K, N, M <= kFewRows, 0, 0, 1, 0, 1, 0};
  const int64_t panels = N / 16;
  job.groups = panels / 4;
  job.units = job.groups + panels % 4;
  if (M == 0 || job.units == 0) return job;  // no tasks
  if (job.few) {
    job.rows_per_task = M;
  } else {
    const int64_t chunks = ceil_div(M, kTaskRows);
    job.rows_per_task = ceil_div(ceil_div(M, chunks), kern->block.rows) * kern->block.rows;
  }
  job.row_tasks = ceil_div(M, job.rows_per_task);
  // more rows a task, more weights a task too: X and the weights are then read about as often
  const int64_t weight_bytes = kTaskWeightBytes * max64(1, job.few ? 1 : job.rows_per_task / 64);
  const int64_t unit_bytes = K * 16 * 4 * int64_t(sizeof(float));
  job.units_per_task = unit_bytes > 0 ? max64(1, ceil_div(weight_bytes, unit_bytes)) : job.units;
  job.unit_tasks = ceil_div(job.units, job.units_per_task);
  return job;
}

// rows [m0, m1) x panels [j0, j1), few rows: every tile streams its panels' whole K once, `next` prefetched after
void few_rows(const Job& job, int64_t m0, int64_t m1, int64_t j0, int64_t j1) {
  const Kernels& kern = *job.kern;
  const int64_t groups_end = 4 * job.groups, panel = 16 * job.K;
  Tile t{nullptr, nullptr, nullptr, nullptr, job.K, panel, job.N, job.K, false};
  for (int64_t j = j0; j < j1;) {
    const int width = j < groups_end ? kern.few.panels : 1;
    const TileFn* fn = width == 1 ? kern.few_tail : kern.few_tile;
    const bool next = width > 1 && j + 2 * width <= min64(j1, groups_end);
    t.p = job.p + j * panel;
    t.next = next ? t.p + width * panel : nullptr;
    for (int64_t m = m0; m < m1; m += kern.few.rows) {
      t.x = job.x + m * job.K;
      t.y = job.y + m * job.N + j * 16;
      fn[min64(kern.few.rows, m1 - m)](t);
    }
    j += width;
  }
}

// rows [m0, m1) x panels [j0, j1), many rows: K blocks of 512 (partial sums in Y), row blocks of 48 (X's block
// stays in L2 across the panels), tiles of 6 rows (their panels' K block, P [4, 512, 16]: 128 KB, stays in L2
// across the row block)
void blocked(const Job& job, int64_t m0, int64_t m1, int64_t j0, int64_t j1) {
  const Kernels& kern = *job.kern;
  const int64_t groups_end = 4 * job.groups, panel = 16 * job.K;
  Tile t{nullptr, nullptr, nullptr, nullptr, job.K, panel, job.N, 0, false};
  int64_t k0 = 0;
  do {  // at least once: K = 0 stores zeros
    t.kn = min64(kBlockK, job.K - k0);
    t.accumulate = k0 > 0;
    for (int64_t mb = m0; mb < m1; mb += kBlockRows) {
      const int64_t me = min64(m1, mb + kBlockRows);
      for (int64_t j = j0; j < j1;) {
        const int width = j < groups_end ? kern.block.panels : 1;
        const TileFn* fn = width == 1 ? kern.block_tail : kern.block_tile;
        t.p = job.p + j * panel + k0 * 16;
        for (int64_t m = mb; m < me; m += kern.block.rows) {
          t.x = job.x + m * job.K + k0;
          t.y = job.y + m * job.N + j * 16;
          fn[min64(kern.block.rows, me - m)](t);
        }
        j += width;
      }
    }
    k0 += t.kn;
  } while (k0 < job.K);
}

// task `index` of job `data` (KernelContext_ParallelFor's callback): row range index % row_tasks, unit range
// index / row_tasks
void run_task(void* data, size_t index) {
  const Job& job = *static_cast<const Job*>(data);
  const int64_t r = int64_t(index) % job.row_tasks, u = int64_t(index) / job.row_tasks;
  const int64_t m0 = r * job.rows_per_task, m1 = min64(job.M, m0 + job.rows_per_task);
  const int64_t j0 = unit_panel(job, u * job.units_per_task);
  const int64_t j1 = unit_panel(job, min64(job.units, (u + 1) * job.units_per_task));
  if (job.few)
    few_rows(job, m0, m1, j0, j1);
  else
    blocked(job, m0, m1, j0, j1);
}

// ---- the ISA choice ----

struct Cpu {
  bool avx512, avx2;
};
Cpu cpu() {
  static const Cpu features = [] {
    __builtin_cpu_init();
    return Cpu{__builtin_cpu_supports("avx512f") != 0,
               __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0};
  }();
  return features;
}

struct Choice {
  const Kernels* kernels;  // null: error says why
  const char* error;
};
// AVX-512F if the CPU has it, else AVX2 + FMA; SPECULA_KERNELS_ISA=avx2 / avx512 forces one (other values: automatic)
Choice choose() {
  const char* forced = getenv("SPECULA_KERNELS_ISA");
  const bool want_avx2 = forced && strcmp(forced, "avx2") == 0;
  const bool want_avx512 = forced && strcmp(forced, "avx512") == 0;
  const Cpu features = cpu();
  if (want_avx512 && !features.avx512)
    return {nullptr, "dev.specula.kernels: SPECULA_KERNELS_ISA=avx512, but this CPU lacks AVX-512F"};
  if (features.avx512 && !want_avx2) return {&kAvx512, nullptr};
  if (features.avx2) return {&kAvx2, nullptr};
  return {nullptr, "dev.specula.kernels: this CPU lacks AVX2/FMA (PanelMatMul needs AVX2 and FMA, or AVX-512F)"};
}

// ---- the operator ----

constexpr size_t kMaxRank = 32;

struct Op {         // ORT hands &ort back to every callback: the rest rides along
  OrtCustomOp ort;  // first member
  const OrtApi* api;
  const Kernels* kernels;
};

struct TensorInfo {
  int type;
  size_t rank;
  int64_t dims[kMaxRank];
};

// X's or P's element type and shape; a rank past kMaxRank is an error
OrtStatus* tensor_info(const OrtApi* api, const OrtValue* value, TensorInfo* out) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* status = GetTensorTypeAndShape(api, value, &info)) return status;
  OrtStatus* status = GetTensorElementType(api, info, &out->type);
  if (!status) status = GetDimensionsCount(api, info, &out->rank);
  if (!status && out->rank > kMaxRank)
    status = CreateStatus(api, kOrtInvalidArgument, "PanelMatMul: X has more than 32 dimensions");
  if (!status) status = GetDimensions(api, info, out->dims, out->rank);
  ReleaseTensorTypeAndShapeInfo(api, info);
  return status;
}

// null when X [.., K] and P [N/16, K, 16] fit, else what is wrong
const char* shape_error(const TensorInfo& x, const TensorInfo& p) {
  if (x.type != kFloat || p.type != kFloat) return "PanelMatMul: X and P must be float32";
  if (x.rank < 1) return "PanelMatMul: X must have at least one dimension ([.., K])";
  if (p.rank != 3 || p.dims[2] != 16) return "PanelMatMul: P must be [N/16, K, 16]";
  if (p.dims[1] != x.dims[x.rank - 1]) return "PanelMatMul: P [N/16, K, 16] must have X's last dimension as K";
  return nullptr;
}

// Y = X W on ONNX Runtime's intra-op pool, or inline when the job is one task
OrtStatus* run(const OrtApi* api, OrtKernelContext* context, Job* job) {
  const int64_t tasks = job->tasks();
  if (tasks == 1) run_task(job, 0);
  if (tasks <= 1) return nullptr;
  return KernelContext_ParallelFor(api, context, run_task, size_t(tasks), 0, job);
}

OrtStatus* compute(void* kernel, OrtKernelContext* context) {
  const Op& op = *static_cast<const Op*>(kernel);
  const OrtApi* api = op.api;
  const OrtValue* xv = nullptr;
  const OrtValue* pv = nullptr;
  if (OrtStatus* status = KernelContext_GetInput(api, context, 0, &xv)) return status;
  if (OrtStatus* status = KernelContext_GetInput(api, context, 1, &pv)) return status;
  if (!xv || !pv) return CreateStatus(api, kOrtInvalidArgument, "PanelMatMul: X and P are required");
  TensorInfo x, p;
  if (OrtStatus* status = tensor_info(api, xv, &x)) return status;
  if (OrtStatus* status = tensor_info(api, pv, &p)) return status;
  if (const char* error = shape_error(x, p)) return CreateStatus(api, kOrtInvalidArgument, error);
  const int64_t K = p.dims[1], N = 16 * p.dims[0];
  int64_t M = 1;
  for (size_t i = 0; i + 1 < x.rank; i++) M *= x.dims[i];
  int64_t yd[kMaxRank];  // Y [.., N]: X's shape with N last
  memcpy(yd, x.dims, sizeof(int64_t) * x.rank);
  yd[x.rank - 1] = N;
  OrtValue* yv = nullptr;
  if (OrtStatus* status = KernelContext_GetOutput(api, context, 0, yd, x.rank, &yv)) return status;
  if (M == 0 || N == 0) return nullptr;  // an empty Y
  void *xd = nullptr, *pd = nullptr, *ydata = nullptr;
  if (OrtStatus* status = GetTensorMutableData(api, const_cast<OrtValue*>(xv), &xd)) return status;
  if (OrtStatus* status = GetTensorMutableData(api, const_cast<OrtValue*>(pv), &pd)) return status;
  if (OrtStatus* status = GetTensorMutableData(api, yv, &ydata)) return status;
  Job job = plan(op.kernels, static_cast<const float*>(xd), static_cast<const float*>(pd),
                 static_cast<float*>(ydata), M, K, N);
  return run(api, context, &job);
}

// the OrtCustomOp callbacks
OrtStatus* create_kernel_v2(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*, void** kernel) {
  *kernel = const_cast<OrtCustomOp*>(op);  // the Op around it: constant, shared by every kernel
  return nullptr;
}
void* create_kernel(const OrtCustomOp* op, const OrtApi*, const OrtKernelInfo*) { return const_cast<OrtCustomOp*>(op); }
OrtStatus* compute_v2(void* kernel, OrtKernelContext* context) { return compute(kernel, context); }
void compute_v1(void* kernel, OrtKernelContext* context) {  // ONNX Runtime calls V2 (struct version 16), not this
  if (OrtStatus* status = compute(kernel, context)) ReleaseStatus(static_cast<const Op*>(kernel)->api, status);
}
void destroy(void*) {}
const char* name(const OrtCustomOp*) { return "PanelMatMul"; }
const char* provider(const OrtCustomOp*) { return "CPUExecutionProvider"; }
int float_type(const OrtCustomOp*, size_t) { return kFloat; }
size_t two(const OrtCustomOp*) { return 2; }
size_t one(const OrtCustomOp*) { return 1; }
int required(const OrtCustomOp*, size_t) { return 0; }     // INPUT_OUTPUT_REQUIRED
int default_memory(const OrtCustomOp*, size_t) { return 0; }  // OrtMemTypeDefault
int min_arity(const OrtCustomOp*) { return 1; }              // (no variadic input or output)
int homogeneous(const OrtCustomOp*) { return 0; }

Op make_op(const OrtApi* api, const Kernels* kernels) {
  OrtCustomOp ort;
  ort.version = 16;
  ort.CreateKernel = create_kernel;
  ort.GetName = name;
  ort.GetExecutionProviderType = provider;
  ort.GetInputType = float_type;
  ort.GetInputTypeCount = two;
  ort.GetOutputType = float_type;
  ort.GetOutputTypeCount = one;
  ort.KernelCompute = compute_v1;
  ort.KernelDestroy = destroy;
  ort.GetInputCharacteristic = required;
  ort.GetOutputCharacteristic = required;
  ort.GetInputMemoryType = default_memory;
  ort.GetVariadicInputMinArity = min_arity;
  ort.GetVariadicInputHomogeneity = homogeneous;
  ort.GetVariadicOutputMinArity = min_arity;
  ort.GetVariadicOutputHomogeneity = homogeneous;
  ort.CreateKernelV2 = create_kernel_v2;
  ort.KernelComputeV2 = compute_v2;
  return Op{ort, api, kernels};
}

// Once a process: keep this library loaded for good (dlopen again with RTLD_NODELETE: closing the session options
// that loaded it dlcloses it, while live sessions still call its code), and build the two operators, constant from
// then on. The first registration's OrtApi serves every later one (one ONNX Runtime a process).
const char kAnchor = 0;  // an address inside this library, for dladdr
struct Registry {
  Op avx512, avx2;
};
const Registry& registry(const OrtApi* api) {
  static const Registry ops = [api] {
    Dl_info self;
    if (dladdr(&kAnchor, &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
    return Registry{make_op(api, &kAvx512), make_op(api, &kAvx2)};
  }();
  return ops;
}

}  // namespace

// The library's entry (ONNX Runtime's RegisterCustomOpsLibrary): domain dev.specula.kernels with PanelMatMul on the
// ISA chosen now, or an error status when this CPU cannot run it or ONNX Runtime is older than 1.17.
SPECULA_EXPORT OrtStatus* RegisterCustomOps(OrtSessionOptions* options, const OrtApiBase* base) {
  const OrtApi* api = base->GetApi(17);
  if (!api) {
    const OrtApi* v1 = base->GetApi(1);
    return v1 ? CreateStatus(v1, kOrtFail, "dev.specula.kernels: ONNX Runtime 1.17 or newer is needed") : nullptr;
  }
  const Choice choice = choose();
  if (!choice.kernels) return CreateStatus(api, kOrtFail, choice.error);
  const Registry& ops = registry(api);
  const Op& op = choice.kernels == &kAvx512 ? ops.avx512 : ops.avx2;
  OrtCustomOpDomain* domain = nullptr;  // owned by the session options' users from here on; never freed
  OrtStatus* status = CreateCustomOpDomain(api, "dev.specula.kernels", &domain);
  if (!status) status = CustomOpDomain_Add(api, domain, &op.ort);
  if (!status) status = AddCustomOpDomain(api, options, domain);
  return status;
}

// The ISA PanelMatMul would run on now (honouring SPECULA_KERNELS_ISA): "avx512f", "avx2" or "none".
SPECULA_EXPORT const char* SpeculaKernelsIsa(void) {
  const Choice choice = choose();
  return choice.kernels ? choice.kernels->name : "none";
}

#ifdef SPECULA_KERNELS_CHECK
// ---- the check program: the contract, bit for bit, and the speed ----
//   (a) rows of calls of 1-9, 17, 64 and 300 rows equal the row computed alone
//   (b) the AVX2 tiles equal the AVX-512 ones (when this CPU has AVX-512F)
//   (c) the thread split changes nothing: tasks of other sizes, in other orders, on two threads
//   (d) a scalar reference, std::fmaf over k in order from 0, equals the vector results
//   (e) speed, one thread: the embedded target's 31 matrices (44 MB) at 1-8 rows (GB/s) and 64, 512 rows (GFLOP/s)
#include <chrono>
#include <cmath>
#include <cstdio>
#include <thread>
#include <vector>

namespace {

using Floats = std::vector<float>;

struct Rng {  // xorshift64*: full 24-bit mantissas, so any change in rounding shows
  uint64_t state;
  float next() {
    state ^= state >> 12, state ^= state << 25, state ^= state >> 27;
    const uint64_t bits = state * 0x2545F4914F6CDD1DULL;
    const float unit = float(bits >> 40) / float(1 << 24);  // [0, 1)
    return (bits & 1 ? -1.0f : 1.0f) * unit * (bits & 2 ? 1.0f : 1.0f / 64);
  }
};

Floats random_floats(size_t n, Rng& rng) {
  Floats v(n);
  for (auto& f : v) f = rng.next();
  return v;
}

// W [K, N] into panels P [N/16, K, 16]
Floats panels(const Floats& w, int64_t K, int64_t N) {
  Floats p(w.size());
  for (int64_t j = 0; j < N / 16; j++)
    for (int64_t k = 0; k < K; k++)
      for (int64_t c = 0; c < 16; c++) p[(j * K + k) * 16 + c] = w[k * N + 16 * j + c];
  return p;
}

// the contract itself: Y [M, N] = X [M, K] W [K, N], fmaf over k in order from 0
Floats reference(const Floats& x, const Floats& w, int64_t M, int64_t K, int64_t N) {
  Floats y(M * N);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = 0; n < N; n++) {
      float acc = 0.0f;
      for (int64_t k = 0; k < K; k++) acc = std::fmaf(x[m * K + k], w[k * N + n], acc);
      y[m * N + n] = acc;
    }
  return y;
}

enum class Split { plan, fine_reversed, one_task, two_threads };

// Y = X P as ONNX Runtime would run it, with the tasks split and ordered as `split` says; few: force a path
Floats matmul(const Kernels* kern, const float* x, const Floats& p, int64_t M, int64_t K, int64_t N,
              Split split = Split::plan, int few = -1) {
  Floats y(M * N, NAN);
  Job job = plan(kern, x, p.data(), y.data(), M, K, N);
  if (few >= 0) job.few = few != 0;
  if (split == Split::fine_reversed && job.tasks() > 0) {  // one unit and 7 rows a task, last task first
    job.units_per_task = 1, job.unit_tasks = job.units;
    job.rows_per_task = 7, job.row_tasks = ceil_div(M, 7);
  } else if (split == Split::one_task && job.tasks() > 0) {
    job.units_per_task = job.units, job.unit_tasks = 1;
    job.rows_per_task = M, job.row_tasks = 1;
  }
  const int64_t tasks = job.tasks();
  if (split == Split::two_threads) {  // odd tasks on a second thread, even ones here, at the same time
    std::thread other([&] {
      for (int64_t t = 1; t < tasks; t += 2) run_task(&job, size_t(t));
    });
    for (int64_t t = 0; t < tasks; t += 2) run_task(&job, size_t(t));
    other.join();
  } else if (split == Split::fine_reversed) {
    for (int64_t t = tasks - 1; t >= 0; t--) run_task(&job, size_t(t));
  } else {
    for (int64_t t = 0; t < tasks; t++) run_task(&job, size_t(t));
  }
  return y;
}

bool same_row(const Floats& a, int64_t ra, const Floats& b, int64_t rb, int64_t N) {
  return memcmp(a.data() + ra * N, b.data() + rb * N, sizeof(float) * N) == 0;
}

struct Tally {
  int64_t checked = 0, differing = 0;
  void add(bool same) { checked++, differing += !same; }
};

struct Case {
  int64_t K, N;
};
// K not a multiple of 16 or of the K block, N = 16, N with tail panels (5 = 4 + 1, 67 = 64 + 3), K = 0
const Case kCases[] = {{100, 16}, {259, 16 * 5}, {1000, 16 * 67}, {513, 640}, {17, 48}, {1, 32}, {0, 48}, {384, 1024}};
const int64_t kRowCounts[] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 17, 64, 300};
constexpr int64_t kMostRows = 300;

// (a), (c), (d) for one ISA, (b) against the other ISA when given
void check_case(const Kernels* kern, const Kernels* other, const Case& c, Rng& rng, Tally* rows, Tally* isa,
                Tally* split, Tally* ref) {
  const int64_t K = c.K, N = c.N;
  const Floats x = random_floats(kMostRows * K, rng), w = random_floats(K * N, rng), p = panels(w, K, N);
  const Floats expect = reference(x, w, kMostRows, K, N);
  Floats alone(kMostRows * N);
  for (int64_t m = 0; m < kMostRows; m++) {
    const Floats y = matmul(kern, x.data() + m * K, p, 1, K, N);
    memcpy(alone.data() + m * N, y.data(), sizeof(float) * N);
    ref->add(same_row(y, 0, expect, m, N));
  }
  for (int64_t M : kRowCounts) {
    const Floats y = matmul(kern, x.data(), p, M, K, N);
    for (int64_t m = 0; m < M; m++) rows->add(same_row(y, m, alone, m, N)), ref->add(same_row(y, m, expect, m, N));
    if (other) isa->add(matmul(other, x.data(), p, M, K, N) == y);
    for (Split s : {Split::fine_reversed, Split::one_task, Split::two_threads})
      split->add(matmul(kern, x.data(), p, M, K, N, s) == y);
    split->add(matmul(kern, x.data(), p, M, K, N, Split::plan, M > kFewRows) == y);  // the other path
  }
}

// (e) one thread, tasks in order: the embedded target's matrices, 6 layers of 5 and the output head
void timing(const Kernels* kern) {
  struct Matrix {
    int64_t K, N;
    Floats p;
  };
  std::vector<Matrix> matrices;
  const int64_t layer[5][2] = {{384, 640}, {384, 384}, {384, 1024}, {384, 1024}, {1024, 384}};
  Rng rng{12345};
  for (int l = 0; l < 6; l++)
    for (auto& s : layer) matrices.push_back({s[0], s[1], random_floats(s[0] * s[1], rng)});
  matrices.push_back({384, 4096, random_floats(384 * 4096, rng)});
  double bytes = 0, flops_per_row = 0;
  for (auto& m : matrices) bytes += m.p.size() * sizeof(float), flops_per_row += 2.0 * m.p.size();
  printf("(e) one thread, %s, the embedded set (%zu matrices, %.1f MB):\n", kern->name, matrices.size(), bytes / 1e6);
  auto measure = [&](int64_t M, int few) {
    const Floats x = random_floats(M * 1024, rng);
    const int repeat = M <= kFewRows ? 40 : M <= 64 ? 6 : 2;
    double best = 1e30;
    for (int trial = 0; trial < 5; trial++) {
      const auto start = std::chrono::steady_clock::now();
      for (int i = 0; i < repeat; i++)
        for (auto& m : matrices) matmul(kern, x.data(), m.p, M, m.K, m.N, Split::plan, few);
      const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / repeat;
      best = s < best ? s : best;
    }
    return best;
  };
  for (int64_t M : {1, 2, 4, 8}) {
    const double s = measure(M, -1);
    printf("    %3lld row(s): %8.3f ms  %6.1f GB/s of weights\n", (long long)M, s * 1e3, bytes / s / 1e9);
  }
  for (int64_t M : {64, 512}) {
    const double s = measure(M, -1);
    printf("    %3lld rows:   %8.3f ms  %6.1f GFLOP/s\n", (long long)M, s * 1e3, flops_per_row * M / s / 1e9);
  }
  const double s = measure(64, 1);
  printf("    64 rows on the few-row path (the prototype's scheme): %.1f GFLOP/s\n", flops_per_row * 64 / s / 1e9);
}

void report(const char* what, const Tally& t) {
  printf("%s: %lld of %lld differ%s\n", what, (long long)t.differing, (long long)t.checked,
         t.differing ? "   <-- FAILED" : "");
}

}  // namespace

int main() {
  const Choice choice = choose();
  if (!choice.kernels) {
    printf("no kernels on this CPU: %s\n", choice.error);
    return 1;
  }
  const Kernels* kern = choice.kernels;
  const Kernels* other = cpu().avx512 ? (kern == &kAvx512 ? &kAvx2 : &kAvx512) : nullptr;
  printf("ISA: %s (SpeculaKernelsIsa: %s; SPECULA_KERNELS_ISA=%s)\n", kern->name, SpeculaKernelsIsa(),
         getenv("SPECULA_KERNELS_ISA") ? getenv("SPECULA_KERNELS_ISA") : "");
  Tally rows, isa, split, ref;
  Rng rng{42};
  for (const Case& c : kCases) check_case(kern, other, c, rng, &rows, &isa, &split, &ref);
  report("(a) rows of calls of 1-9, 17, 64, 300 rows against the row alone", rows);
  if (other)
    report(other == &kAvx2 ? "(b) AVX2 calls against AVX-512" : "(b) AVX-512 calls against AVX2", isa);
  else
    printf("(b) skipped: this CPU lacks AVX-512F\n");
  report("(c) calls split in other tasks, orders, threads or paths against the plan's", split);
  report("(d) rows against the scalar fmaf reference", ref);
  const int64_t differing = rows.differing + isa.differing + split.differing + ref.differing;
  printf("%s\n", differing ? "FAILED: results differ" : "all bit-identical");
  timing(kern);
  return differing != 0;
}
#endif  // SPECULA_KERNELS_CHECK
