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
#include <math.h>
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
constexpr int kUint8 = 2;               // ONNXTensorElementDataType UINT8
constexpr int kInt32 = 6;               // ONNXTensorElementDataType INT32

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

// Few-row tiles prefetch a cache line a panel this many k-steps ahead (4 KB over a tile's four streams). On the EPYC, 16
// against 8, alternating in one process, one row: a 401 MB set streamed from DRAM 10.6 against 11.5 ms, the embedded
// target's 44 MB 0.93 against 1.14 ms. The four panels interleaved in one stream were faster on the 44 MB (0.81-0.85
// ms) but 15 % slower from DRAM (12.5-13.2 ms): the hardware prefetcher follows four streams further than one.
constexpr int kPrefetchSteps = 16;
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
int64_t unit_panel(int64_t groups, int64_t u) { return u < groups ? 4 * u : 3 * groups + u; }

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
  const int64_t j0 = unit_panel(job.groups, u * job.units_per_task);
  const int64_t j1 = unit_panel(job.groups, min64(job.units, (u + 1) * job.units_per_task));
  if (job.few)
    few_rows(job, m0, m1, j0, j1);
  else
    blocked(job, m0, m1, j0, j1);
}

// ---- PanelMatMulQ4: weights of 4 bits in blocks along K, computed with int8 activations ----
//
// Q [N/16, Kp/8, 64] uint8 holds W4 [Kp, N] (Kp: K rounded up to the block B; W4 0 past K) in panels of 16 columns:
// step s of panel j is 64 bytes, byte 4c + i holding W4[8s + i, 16j + c] in its low nibble and W4[8s + 4 + i, 16j + c]
// in its high one (c < 16, i < 4), so that one 64-byte load feeds 16 columns x 8 k. S and Z [N/16, Kp/B, 16] float:
// each column's scale and zero point (an integer 0..15) for each block. W[k, n] = (W4[k, n] - Z[n, b]) S[n, b], ONNX
// Runtime's MatMulNBits. The panels lie in groups of 4 (then the N/16 % 4 tail panels one by one), a group's 4 panels
// interleaved step by step in Q ([Kp/8][4][64] bytes) and block by block in S and Z ([Kp/B][4][16]): a tile of a group
// reads one stream, which the hardware prefetches (panels one after the other are streams of a few KB each).
//
// Each row of X is quantized per block b: a = max |x| over the block, d = a / 127, q = round-half-even(x (127 / a))
// (all 0 when a = 0; d NaN when the block holds a NaN or an infinity), t = sum of q. Then, blocks in order, from y = 0:
//   c = sum_k q_k W4[k, n] - Z[n, b] t      integers, exact in float32 (|c| <= 127 * 15 * B < 2^24 for B <= 4096)
//   y = fma(c, S[n, b] d, y)
// whatever the rows of the call, the tiles, the thread split or the ISA: rows stay independent, bit for bit.

#define SPECULA_VNNI __attribute__((target("avx512f,avx512bw,avx512vnni")))

// GCC 12's AVX-512 headers start some intrinsics from _mm512_undefined_*() (`__m512 __Y = __Y;`), which
// -Wmaybe-uninitialized reports at every use inlined here: not this file's values
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

constexpr int64_t kQStepBytes = 64;     // a panel's bytes for one step of 8 k
constexpr int64_t kQMaxBlock = 4096;    // |c| < 2^24
constexpr int64_t kQ8MaxBlock = 256;    // the same at 8 bits
constexpr int64_t kQTaskBytes = 64 << 10;  // a task's 4-bit weights: at least 64 KB
constexpr int64_t kQTaskRows = 64;      // more rows: at most this many a task

struct QRows {  // X [M, K] quantized row by row and block by block
  int8_t* q;    // [M, Kp], 0 past K
  float* d;     // [M, nb] the blocks' scales
  float* t;     // [M, nb] the blocks' sums of q (integers)
};

struct QTile {        // Y [R, 16 G] = X [R, K] W [K, 16 G] for R rows and G panels (next to each other in a group)
  const int8_t* q;    // the first row's q (row stride ldq = Kp)
  const float* d;     // the first row's d (row stride nb)
  const float* t;     // the first row's t (row stride nb)
  const uint8_t* p;   // the first panel's first step (step stride lds: 256 bytes in a group, 64 alone; panels 64 apart)
  const float* s;     // the first panel's first block of S (block stride ldb: 64 floats in a group, 16 alone)
  const float* z;     // the same in Z
  float* y;           // Y's first row at the tile's first column (row stride ldy = N)
  int64_t ldq, lds, ldb, ldy, nb, steps;  // steps: of 8 k, a block's (B / 8)
};
using QTileFn = void (*)(const QTile&);

// A block's end, for R rows and G panels: y = fma(acc - Z t, S d, y) (y = 0 before the first block), acc the
// block's integer sums. Shared by the 4- and 8-bit tiles.
template <int R, int G>
SPECULA_VNNI inline void q_block_end_avx512(const QTile& t, int64_t b, const __m512i (&acc)[R][G]) {
#pragma GCC unroll 4
  for (int m = 0; m < R; m++) {
    const __m512 db = _mm512_set1_ps(t.d[m * t.nb + b]), tb = _mm512_set1_ps(t.t[m * t.nb + b]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++) {
      const int64_t at = b * t.ldb + g * 16;
      const __m512 c = _mm512_fnmadd_ps(_mm512_loadu_ps(t.z + at), tb, _mm512_cvtepi32_ps(acc[m][g]));
      const __m512 sd = _mm512_mul_ps(_mm512_loadu_ps(t.s + at), db);
      float* y = t.y + m * t.ldy + g * 16;
      _mm512_storeu_ps(y, _mm512_fmadd_ps(c, sd, b ? _mm512_loadu_ps(y) : _mm512_setzero_ps()));
    }
  }
}

template <int R, int G>
SPECULA_AVX2 inline void q_block_end_avx2(const QTile& t, int64_t b, const __m256i (&acc)[R][G][2]) {
#pragma GCC unroll 4
  for (int m = 0; m < R; m++) {
    const __m256 db = _mm256_set1_ps(t.d[m * t.nb + b]), tb = _mm256_set1_ps(t.t[m * t.nb + b]);
#pragma GCC unroll 4
    for (int g = 0; g < G; g++)
#pragma GCC unroll 2
      for (int h = 0; h < 2; h++) {
        const int64_t at = b * t.ldb + g * 16 + h * 8;
        const __m256 c = _mm256_fnmadd_ps(_mm256_loadu_ps(t.z + at), tb, _mm256_cvtepi32_ps(acc[m][g][h]));
        const __m256 sd = _mm256_mul_ps(_mm256_loadu_ps(t.s + at), db);
        float* y = t.y + m * t.ldy + g * 16 + h * 8;
        _mm256_storeu_ps(y, _mm256_fmadd_ps(c, sd, b ? _mm256_loadu_ps(y) : _mm256_setzero_ps()));
      }
  }
}

// AVX-512 VNNI: a step of a panel is one __m512i; vpdpbusd multiplies its unsigned nibbles by the row's signed bytes
template <int R, int G>
SPECULA_VNNI void q4_avx512(const QTile& t) {
  const __m512i low = _mm512_set1_epi8(0x0F);
  for (int64_t b = 0; b < t.nb; b++) {
    __m512i acc[R][G] = {};
    const uint8_t* pb = t.p + b * t.steps * t.lds;
    const int8_t* qb = t.q + b * t.steps * 8;
    for (int64_t s = 0; s < t.steps; s++) {
      __m512i lo[G], hi[G];
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) {
        const __m512i v = _mm512_loadu_si512(pb + s * t.lds + g * kQStepBytes);
        lo[g] = _mm512_and_si512(v, low);
        hi[g] = _mm512_and_si512(_mm512_srli_epi16(v, 4), low);
      }
#pragma GCC unroll 4
      for (int m = 0; m < R; m++) {
        int32_t first, second;
        memcpy(&first, qb + m * t.ldq + 8 * s, 4);
        memcpy(&second, qb + m * t.ldq + 8 * s + 4, 4);
        const __m512i xa = _mm512_set1_epi32(first), xb = _mm512_set1_epi32(second);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) {
          acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], lo[g], xa);
          acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], hi[g], xb);
        }
      }
    }
    q_block_end_avx512<R, G>(t, b, acc);
  }
}

// AVX2: a step of a panel is two __m256i (columns 0-7, 8-15); vpmaddubsw and vpmaddwd give vpdpbusd's sums exactly
// (a pair of products is at most 2 * 15 * 127, so no 16-bit sum saturates). 16 registers: one row, 4 panels.
template <int R, int G>
SPECULA_AVX2 void q4_avx2(const QTile& t) {
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1);
  for (int64_t b = 0; b < t.nb; b++) {
    __m256i acc[R][G][2] = {};
    const uint8_t* pb = t.p + b * t.steps * t.lds;
    const int8_t* qb = t.q + b * t.steps * 8;
    for (int64_t s = 0; s < t.steps; s++) {
#pragma GCC unroll 4
      for (int m = 0; m < R; m++) {
        int32_t first, second;
        memcpy(&first, qb + m * t.ldq + 8 * s, 4);
        memcpy(&second, qb + m * t.ldq + 8 * s + 4, 4);
        const __m256i xa = _mm256_set1_epi32(first), xb = _mm256_set1_epi32(second);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
#pragma GCC unroll 2
          for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + s * t.lds + g * 64 + 32 * h));
            const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            const __m256i pairs = _mm256_add_epi16(_mm256_maddubs_epi16(lo, xa), _mm256_maddubs_epi16(hi, xb));
            acc[m][g][h] = _mm256_add_epi32(acc[m][g][h], _mm256_madd_epi16(pairs, ones));
          }
      }
    }
    q_block_end_avx2<R, G>(t, b, acc);
  }
}

// ---- 8 bits: Q [N/16, Kp/4, 64] uint8, step s of panel j holding W8[4s + i, 16j + c] at byte 4c + i (c < 16, i < 4):
// one 64-byte load feeds 16 columns x 4 k. S, Z, the groups of 4 and the arithmetic are PanelMatMulQ4's, with W8 in
// 0..255 and Z an integer 0..255: |c| <= 127 * 255 * B < 2^24 needs B <= 256 (kQ8MaxBlock).

// AVX-512 VNNI: vpdpbusd multiplies a step's unsigned bytes by the row's signed ones, 4 k a lane
template <int R, int G>
SPECULA_VNNI void q8_avx512(const QTile& t) {
  for (int64_t b = 0; b < t.nb; b++) {
    __m512i acc[R][G] = {};
    const uint8_t* pb = t.p + b * t.steps * t.lds;
    const int8_t* qb = t.q + b * t.steps * 4;
    for (int64_t s = 0; s < t.steps; s++) {
      __m512i v[G];
#pragma GCC unroll 4
      for (int g = 0; g < G; g++) v[g] = _mm512_loadu_si512(pb + s * t.lds + g * kQStepBytes);
#pragma GCC unroll 4
      for (int m = 0; m < R; m++) {
        int32_t four;
        memcpy(&four, qb + m * t.ldq + 4 * s, 4);
        const __m512i x = _mm512_set1_epi32(four);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++) acc[m][g] = _mm512_dpbusd_epi32(acc[m][g], v[g], x);
      }
    }
    q_block_end_avx512<R, G>(t, b, acc);
  }
}

// AVX2: vpmaddubsw's pair of 255 * 127 products would saturate 16 bits, so each byte goes as its two nibbles (w = lo +
// 16 hi): pairs of 15 * 127 products, summed to 32 bits by vpmaddwd with 1 and with 16. The same integers as VNNI.
template <int R, int G>
SPECULA_AVX2 void q8_avx2(const QTile& t) {
  const __m256i low = _mm256_set1_epi8(0x0F), ones = _mm256_set1_epi16(1), sixteens = _mm256_set1_epi16(16);
  for (int64_t b = 0; b < t.nb; b++) {
    __m256i acc[R][G][2] = {};
    const uint8_t* pb = t.p + b * t.steps * t.lds;
    const int8_t* qb = t.q + b * t.steps * 4;
    for (int64_t s = 0; s < t.steps; s++) {
#pragma GCC unroll 4
      for (int m = 0; m < R; m++) {
        int32_t four;
        memcpy(&four, qb + m * t.ldq + 4 * s, 4);
        const __m256i x = _mm256_set1_epi32(four);
#pragma GCC unroll 4
        for (int g = 0; g < G; g++)
#pragma GCC unroll 2
          for (int h = 0; h < 2; h++) {
            const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(pb + s * t.lds + g * 64 + 32 * h));
            const __m256i lo = _mm256_and_si256(v, low), hi = _mm256_and_si256(_mm256_srli_epi16(v, 4), low);
            const __m256i sums = _mm256_add_epi32(_mm256_madd_epi16(_mm256_maddubs_epi16(lo, x), ones),
                                                  _mm256_madd_epi16(_mm256_maddubs_epi16(hi, x), sixteens));
            acc[m][g][h] = _mm256_add_epi32(acc[m][g][h], sums);
          }
      }
    }
    q_block_end_avx2<R, G>(t, b, acc);
  }
}

// One block of one row: x [B] (zeros past K already in place) -> q [B], d, t. Both ISAs compute the same: the
// maximum, one product and one round-half-even per element, an integer sum.
SPECULA_VNNI void quantize_avx512(const float* x, int64_t B, int8_t* q, float* d, float* t) {
  const __m512 finite = _mm512_set1_ps(3.40282347e38f);
  __m512 most = _mm512_setzero_ps();
  __mmask16 bad = 0;
  for (int64_t i = 0; i < B; i += 16) {
    const __m512 v = _mm512_abs_ps(_mm512_loadu_ps(x + i));
    bad |= _mm512_cmp_ps_mask(v, finite, _CMP_NLE_UQ);
    most = _mm512_max_ps(most, v);
  }
  const float a = _mm512_reduce_max_ps(most);
  if (bad || a == 0.0f) {
    memset(q, 0, size_t(B));
    *d = bad ? __builtin_nanf("") : 0.0f, *t = 0.0f;
    return;
  }
  const __m512 scale = _mm512_set1_ps(127.0f / a);
  __m512i sum = _mm512_setzero_si512();
  for (int64_t i = 0; i < B; i += 16) {
    const __m512i r =
        _mm512_cvt_roundps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    sum = _mm512_add_epi32(sum, r);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtepi32_epi8(r));
  }
  *d = a / 127.0f, *t = float(_mm512_reduce_add_epi32(sum));
}

SPECULA_AVX2 void quantize_avx2(const float* x, int64_t B, int8_t* q, float* d, float* t) {
  const __m256 sign = _mm256_set1_ps(-0.0f), finite = _mm256_set1_ps(3.40282347e38f);
  __m256 most = _mm256_setzero_ps();
  int bad = 0;
  for (int64_t i = 0; i < B; i += 8) {
    const __m256 v = _mm256_andnot_ps(sign, _mm256_loadu_ps(x + i));
    bad |= _mm256_movemask_ps(_mm256_cmp_ps(v, finite, _CMP_NLE_UQ));
    most = _mm256_max_ps(most, v);
  }
  float lanes[8];
  _mm256_storeu_ps(lanes, most);
  float a = 0.0f;
  for (float v : lanes) a = v > a ? v : a;
  if (bad || a == 0.0f) {
    memset(q, 0, size_t(B));
    *d = bad ? __builtin_nanf("") : 0.0f, *t = 0.0f;
    return;
  }
  const __m256 scale = _mm256_set1_ps(127.0f / a);
  __m256i sum = _mm256_setzero_si256();
  for (int64_t i = 0; i < B; i += 8) {
    const __m256 rounded =
        _mm256_round_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), scale), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    const __m256i r = _mm256_cvttps_epi32(rounded);
    sum = _mm256_add_epi32(sum, r);
    int32_t values[8];
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(values), r);
    for (int j = 0; j < 8; j++) q[i + j] = int8_t(values[j]);
  }
  int32_t sums[8];
  _mm256_storeu_si256(reinterpret_cast<__m256i*>(sums), sum);
  int32_t total = 0;
  for (int32_t v : sums) total += v;
  *d = a / 127.0f, *t = float(total);
}
using QuantizeFn = void (*)(const float*, int64_t, int8_t*, float*, float*);

struct QKernels {
  const char* name;
  int bits;                      // 4 (PanelMatMulQ4) or 8 (PanelMatMulQ8)
  int rows, panels;              // a tile's rows (the most) and panels (1 or 4)
  QTileFn tile[5];               // [r]: r rows x panels
  QTileFn tail[5];               // [r]: r rows x 1 (the tail panels after the last group of 4)
  QuantizeFn quantize;
  int64_t step_k() const { return 32 / bits; }  // k a 64-byte step of a panel holds: 8 at 4 bits, 4 at 8
  const char* op_name() const { return bits == 4 ? "PanelMatMulQ4" : "PanelMatMulQ8"; }
};

// {name, bits, rows, panels, tiles, tail tiles, quantize}
const QKernels kQ4Avx512 = {"avx512vnni", 4, 4, 4,
                            {nullptr, q4_avx512<1, 4>, q4_avx512<2, 4>, q4_avx512<3, 4>, q4_avx512<4, 4>},
                            {nullptr, q4_avx512<1, 1>, q4_avx512<2, 1>, q4_avx512<3, 1>, q4_avx512<4, 1>},
                            quantize_avx512};
const QKernels kQ4Avx2 = {"avx2", 4, 1, 4, {nullptr, q4_avx2<1, 4>}, {nullptr, q4_avx2<1, 1>}, quantize_avx2};
const QKernels kQ8Avx512 = {"avx512vnni", 8, 4, 4,
                            {nullptr, q8_avx512<1, 4>, q8_avx512<2, 4>, q8_avx512<3, 4>, q8_avx512<4, 4>},
                            {nullptr, q8_avx512<1, 1>, q8_avx512<2, 1>, q8_avx512<3, 1>, q8_avx512<4, 1>},
                            quantize_avx512};
const QKernels kQ8Avx2 = {"avx2", 8, 1, 4, {nullptr, q8_avx2<1, 4>}, {nullptr, q8_avx2<1, 1>}, quantize_avx2};

// Y [M, N] = X [M, K] W [K, N] on 4-bit panels: tasks of rows x units (groups of 4 panels, then the tail panels)
struct QJob {
  const QKernels* kern;
  const float* x;  // X [M, K]
  QRows rows;      // X quantized
  const uint8_t* p;
  const float* s;
  const float* z;
  float* y;
  int64_t M, K, N, Kp, nb, B;
  int64_t groups, units;
  int64_t units_per_task, unit_tasks;
  int64_t rows_per_task, row_tasks;
  int64_t tasks() const { return unit_tasks * row_tasks; }
};

void q_plan(QJob* job) {
  const int64_t panels = job->N / 16;
  job->groups = panels / 4;
  job->units = job->groups + panels % 4;
  job->rows_per_task = job->M <= kFewRows ? job->M : kQTaskRows;
  job->row_tasks = job->M == 0 ? 0 : ceil_div(job->M, job->rows_per_task);
  const int64_t unit_bytes = 4 * (job->Kp / job->kern->step_k()) * kQStepBytes;
  job->units_per_task = max64(1, ceil_div(kQTaskBytes, unit_bytes));
  job->unit_tasks = ceil_div(job->units, job->units_per_task);
}

// rows [m0, m1) x panels [j0, j1): each tile streams its panels' K once per tile of rows (from L2 after the first)
void q_rows(const QJob& job, int64_t m0, int64_t m1, int64_t j0, int64_t j1) {
  const QKernels& kern = *job.kern;
  const int64_t groups_end = 4 * job.groups;
  const int64_t panel_bytes = job.Kp / kern.step_k() * kQStepBytes;
  QTile t{nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, job.Kp, 0, 0, job.N, job.nb,
          job.B / kern.step_k()};
  for (int64_t j = j0; j < j1;) {
    const bool grouped = j < groups_end;
    const int width = grouped ? kern.panels : 1;
    const QTileFn* fn = width == 1 ? kern.tail : kern.tile;
    const int64_t first = grouped ? j - j % 4 : j, within = grouped ? j % 4 : 0;  // the group's (or tail's) panel
    t.lds = grouped ? 4 * kQStepBytes : kQStepBytes;
    t.ldb = grouped ? 4 * 16 : 16;
    t.p = job.p + first * panel_bytes + within * kQStepBytes;
    t.s = job.s + first * 16 * job.nb + within * 16;
    t.z = job.z + first * 16 * job.nb + within * 16;
    for (int64_t m = m0; m < m1; m += kern.rows) {
      t.q = job.rows.q + m * job.Kp;
      t.d = job.rows.d + m * job.nb;
      t.t = job.rows.t + m * job.nb;
      t.y = job.y + m * job.N + j * 16;
      fn[min64(kern.rows, m1 - m)](t);
    }
    j += width;
  }
}

void q_run_task(void* data, size_t index) {
  const QJob& job = *static_cast<const QJob*>(data);
  const int64_t r = int64_t(index) % job.row_tasks, u = int64_t(index) / job.row_tasks;
  const int64_t m0 = r * job.rows_per_task, m1 = min64(job.M, m0 + job.rows_per_task);
  q_rows(job, m0, m1, unit_panel(job.groups, u * job.units_per_task),
         unit_panel(job.groups, min64(job.units, (u + 1) * job.units_per_task)));
}

// X's rows into job->rows (malloc'd here, freed by the caller with free(job->rows.q)); false when out of memory
bool q_quantize(QJob* job) {
  const int64_t M = job->M, Kp = job->Kp, nb = job->nb, B = job->B;
  const size_t bytes = size_t(M * Kp) + 2 * sizeof(float) * size_t(M * nb) + sizeof(float) * size_t(B) + 64;
  char* memory = static_cast<char*>(malloc(bytes));
  if (!memory) return false;
  job->rows.q = reinterpret_cast<int8_t*>(memory);
  float* floats = reinterpret_cast<float*>(memory + ((M * Kp + 63) & ~int64_t(63)));
  job->rows.d = floats;
  job->rows.t = floats + M * nb;
  float* padded = floats + 2 * M * nb;  // the last block of a row when K ends inside it
  for (int64_t m = 0; m < M; m++) {
    const float* x = job->x + m * job->K;
    for (int64_t b = 0; b < nb; b++) {
      const float* block = x + b * B;
      const int64_t have = min64(B, job->K - b * B);
      if (have < B) {
        memset(padded, 0, sizeof(float) * size_t(B));
        if (have > 0) memcpy(padded, block, sizeof(float) * size_t(have));
        block = padded;
      }
      job->kern->quantize(block, B, job->rows.q + m * Kp + b * B, job->rows.d + m * nb + b, job->rows.t + m * nb + b);
    }
  }
  return true;
}

// ---- SpeculaAttention: ONNX Runtime's GroupQueryAttention as the engine's fused graphs use it ----
//
// Inputs: query [B, S, Hq D], key and value [B, S, Hkv D], past_key and past_value [B, Hkv, P, D] (the cache, P at
// least each row's past; the same buffers as the presents when the engine writes the cache in place), seqlens_k [B]
// int32 (each row's total length - 1), total_sequence_length int32 (T, the longest), attention_bias
// [1 or B, 1 or Hq, S, T] float, params [4] float (Hq, Hkv, scale, softcap: the operator's attributes, as an
// initializer). Outputs: [B, S, Hq D], present_key and present_value [B, Hkv, max(P, T), D].
// Row b's past is past_b = seqlens_k[b] + 1 - S slots; its new keys and values go to slots past_b .. past_b + S - 1.
// Query i of head h (kv head h / (Hq / Hkv)) at slot p = past_b + i attends slots 0 .. p:
//   s_j = scale (q . k_j)  [then softcap tanh(s_j / softcap) when softcap > 0]  + bias[b, h, i, j]
//   e_j = exp(s_j - max s), out = (sum_j e_j v_j) (1 / sum_j e_j)
// Every dot product is 16 lanes of FMAs over d in order and one fixed tree of adds, exp is one polynomial, the sums
// run over j in order: a query's output never depends on the other queries of the call, nor on the ISA.

constexpr int64_t kAttnTaskWork = 1 << 18;  // multiply-adds below which a call runs as one task

struct AttnJob {
  const float* q;
  const float* k;
  const float* v;
  const float* bias;
  float* out;
  const float* kc;  // present_key [B, Hkv, Pres, D]
  const float* vc;
  const int32_t* seqlens;
  int64_t B, S, Hq, Hkv, D, T, Pres;
  int64_t bias_b, bias_h;  // the bias's batch and head strides (0 when broadcast)
  float scale, softcap;
  const struct AttnKernels* kern;
  float* scratch;  // every task's scores: `heads` rows of `room` floats each
  int64_t room;
  int64_t split;   // tasks a group of query heads is split in (1: one task a kv head)
};

// r < HB queries of one kv head's group at once, so that its cache is read once for them
using GroupDots = void (*)(const float* const* q, const float* keys, int64_t count, int64_t D, float* const* out);
using GroupWeighted = void (*)(const float* values, const float* const* w, int64_t count, int64_t D,
                               float* const* out);
constexpr int kMostHeads = 8;  // queries at once, at most

struct AttnKernels {
  const char* name;
  int heads;                                   // queries at once
  GroupDots dots[kMostHeads + 1];              // [HB]: out[r][j] = q[r] . keys[j]
  void (*exp_rows)(float*, int64_t);           // x <- exp(x), n a multiple of 16
  GroupWeighted weighted[kMostHeads + 1];      // [HB]: out[r][d] = sum_j w[r][j] values[j][d]
};

// a dot product's 16 lanes reduced as (i, i + 8), (i, i + 4), (i, i + 2), (i, i + 1): the same on both ISAs
SPECULA_AVX2 inline float reduce16(__m256 lo, __m256 hi) {
  const __m256 s8 = _mm256_add_ps(lo, hi);
  const __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(s8), _mm256_extractf128_ps(s8, 1));
  const __m128 s2 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
  return _mm_cvtss_f32(_mm_add_ss(s2, _mm_shuffle_ps(s2, s2, 1)));
}

// the rows out[r] + j, for a call on keys j onwards (HB pointers, in a buffer that lives as long as the statement)
struct Rows {
  float* at[kMostHeads];
  operator float* const*() const { return at; }
};
inline Rows out_at(float* const* out, int rows, int64_t j) {
  Rows shifted{};
  for (int r = 0; r < rows; r++) shifted.at[r] = out[r] + j;
  return shifted;
}

// HB queries against KB keys at a time: each (query, key) is 16 lanes of FMAs over d in order, then reduce16
template <int HB, int KB>
SPECULA_AVX512 void dots_avx512(const float* const* q, const float* keys, int64_t count, int64_t D, float* const* out) {
  int64_t j = 0;
  for (; j + KB <= count; j += KB) {
    __m512 acc[HB][KB];
#pragma GCC unroll 8
    for (int r = 0; r < HB; r++)
#pragma GCC unroll 4
      for (int k = 0; k < KB; k++) acc[r][k] = _mm512_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
      __m512 kv[KB];
#pragma GCC unroll 4
      for (int k = 0; k < KB; k++) kv[k] = _mm512_loadu_ps(keys + (j + k) * D + d);
#pragma GCC unroll 8
      for (int r = 0; r < HB; r++) {
        const __m512 qv = _mm512_loadu_ps(q[r] + d);
#pragma GCC unroll 4
        for (int k = 0; k < KB; k++) acc[r][k] = _mm512_fmadd_ps(qv, kv[k], acc[r][k]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < HB; r++)
#pragma GCC unroll 4
      for (int k = 0; k < KB; k++)
        out[r][j + k] = reduce16(_mm512_castps512_ps256(acc[r][k]),
                                 _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(acc[r][k]), 1)));
  }
  if (KB > 1 && j < count) dots_avx512<HB, 1>(q, keys + j * D, count - j, D, out_at(out, HB, j));
}

template <int HB, int KB>
SPECULA_AVX2 void dots_avx2(const float* const* q, const float* keys, int64_t count, int64_t D, float* const* out) {
  int64_t j = 0;
  for (; j + KB <= count; j += KB) {
    __m256 acc[HB][KB][2];
#pragma GCC unroll 4
    for (int r = 0; r < HB; r++)
#pragma GCC unroll 2
      for (int k = 0; k < KB; k++) acc[r][k][0] = acc[r][k][1] = _mm256_setzero_ps();
    for (int64_t d = 0; d < D; d += 16) {
#pragma GCC unroll 4
      for (int r = 0; r < HB; r++) {
        const __m256 lo = _mm256_loadu_ps(q[r] + d), hi = _mm256_loadu_ps(q[r] + d + 8);
#pragma GCC unroll 2
        for (int k = 0; k < KB; k++) {
          acc[r][k][0] = _mm256_fmadd_ps(lo, _mm256_loadu_ps(keys + (j + k) * D + d), acc[r][k][0]);
          acc[r][k][1] = _mm256_fmadd_ps(hi, _mm256_loadu_ps(keys + (j + k) * D + d + 8), acc[r][k][1]);
        }
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < HB; r++)
#pragma GCC unroll 2
      for (int k = 0; k < KB; k++) out[r][j + k] = reduce16(acc[r][k][0], acc[r][k][1]);
  }
  if (KB > 1 && j < count) dots_avx2<HB, 1>(q, keys + j * D, count - j, D, out_at(out, HB, j));
}

// exp(x) for x <= 0 (a softmax's x - max): 2^n p(r), n = round(x log2 e), r = x - n ln 2 in two FMAs, p a degree-6
// polynomial; below -87 the result is 0. The same operations on both ISAs.
constexpr float kLog2e = 1.44269504088896341f, kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440e-4f;
constexpr float kExpC[7] = {1.0f, 1.0f, 0.5f, 1.66666672e-1f, 4.16666418e-2f, 8.33336823e-3f, 1.38896087e-3f};
SPECULA_AVX512 void exp_avx512(float* x, int64_t n) {
  const __m512 low = _mm512_set1_ps(-87.0f);
  for (int64_t i = 0; i < n; i += 16) {
    const __m512 v = _mm512_loadu_ps(x + i);
    const __mmask16 zero = _mm512_cmp_ps_mask(v, low, _CMP_LT_OQ);
    const __m512 c = _mm512_max_ps(v, low);
    const __m512 m = _mm512_roundscale_ps(_mm512_mul_ps(c, _mm512_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT);
    __m512 r = _mm512_fnmadd_ps(m, _mm512_set1_ps(kLn2Hi), c);
    r = _mm512_fnmadd_ps(m, _mm512_set1_ps(kLn2Lo), r);
    __m512 p = _mm512_set1_ps(kExpC[6]);
    for (int j = 5; j >= 0; j--) p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(kExpC[j]));
    const __m512i bits = _mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(m), _mm512_set1_epi32(127)), 23);
    const __m512 e = _mm512_mul_ps(p, _mm512_castsi512_ps(bits));
    _mm512_storeu_ps(x + i, _mm512_mask_blend_ps(zero, e, _mm512_setzero_ps()));
  }
}
SPECULA_AVX2 void exp_avx2(float* x, int64_t n) {
  const __m256 low = _mm256_set1_ps(-87.0f);
  for (int64_t i = 0; i < n; i += 8) {
    const __m256 v = _mm256_loadu_ps(x + i);
    const __m256 zero = _mm256_cmp_ps(v, low, _CMP_LT_OQ);
    const __m256 c = _mm256_max_ps(v, low);
    const __m256 m = _mm256_round_ps(_mm256_mul_ps(c, _mm256_set1_ps(kLog2e)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(m, _mm256_set1_ps(kLn2Hi), c);
    r = _mm256_fnmadd_ps(m, _mm256_set1_ps(kLn2Lo), r);
    __m256 p = _mm256_set1_ps(kExpC[6]);
    for (int j = 5; j >= 0; j--) p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(kExpC[j]));
    const __m256i bits = _mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(m), _mm256_set1_epi32(127)), 23);
    const __m256 e = _mm256_mul_ps(p, _mm256_castsi256_ps(bits));
    _mm256_storeu_ps(x + i, _mm256_blendv_ps(e, _mm256_setzero_ps(), zero));
  }
}

// out[r][d] = sum_j w[r][j] values[j][d], j in order (one FMA chain an element), 32 floats of d (AVX-512) or 16
// (AVX2) at a time: each value row is read once for the HB queries
template <int HB>
SPECULA_AVX512 void weighted_avx512(const float* values, const float* const* w, int64_t count, int64_t D,
                                    float* const* out) {
  for (int64_t d0 = 0; d0 < D; d0 += 32) {
    const int chunks = D - d0 >= 32 ? 2 : 1;
    __m512 acc[HB][2];
#pragma GCC unroll 8
    for (int r = 0; r < HB; r++) acc[r][0] = acc[r][1] = _mm512_setzero_ps();
    for (int64_t j = 0; j < count; j++) {
      const __m512 v0 = _mm512_loadu_ps(values + j * D + d0);
      const __m512 v1 = chunks == 2 ? _mm512_loadu_ps(values + j * D + d0 + 16) : v0;
#pragma GCC unroll 8
      for (int r = 0; r < HB; r++) {
        const __m512 wj = _mm512_set1_ps(w[r][j]);
        acc[r][0] = _mm512_fmadd_ps(wj, v0, acc[r][0]);
        acc[r][1] = _mm512_fmadd_ps(wj, v1, acc[r][1]);
      }
    }
#pragma GCC unroll 8
    for (int r = 0; r < HB; r++) {
      _mm512_storeu_ps(out[r] + d0, acc[r][0]);
      if (chunks == 2) _mm512_storeu_ps(out[r] + d0 + 16, acc[r][1]);
    }
  }
}
template <int HB>
SPECULA_AVX2 void weighted_avx2(const float* values, const float* const* w, int64_t count, int64_t D,
                                float* const* out) {
  for (int64_t d0 = 0; d0 < D; d0 += 16) {
    __m256 acc[HB][2];
#pragma GCC unroll 4
    for (int r = 0; r < HB; r++) acc[r][0] = acc[r][1] = _mm256_setzero_ps();
    for (int64_t j = 0; j < count; j++) {
      const __m256 v0 = _mm256_loadu_ps(values + j * D + d0), v1 = _mm256_loadu_ps(values + j * D + d0 + 8);
#pragma GCC unroll 4
      for (int r = 0; r < HB; r++) {
        const __m256 wj = _mm256_set1_ps(w[r][j]);
        acc[r][0] = _mm256_fmadd_ps(wj, v0, acc[r][0]);
        acc[r][1] = _mm256_fmadd_ps(wj, v1, acc[r][1]);
      }
    }
#pragma GCC unroll 4
    for (int r = 0; r < HB; r++) {
      _mm256_storeu_ps(out[r] + d0, acc[r][0]);
      _mm256_storeu_ps(out[r] + d0 + 8, acc[r][1]);
    }
  }
}

// one query: 4 keys at a time (4 chains), 2 queries: 2 keys; more: one key, the queries' chains side by side
const AttnKernels kAttnAvx512 = {
    "avx512f",
    8,
    {nullptr, dots_avx512<1, 4>, dots_avx512<2, 2>, dots_avx512<3, 1>, dots_avx512<4, 1>, dots_avx512<5, 1>,
     dots_avx512<6, 1>, dots_avx512<7, 1>, dots_avx512<8, 1>},
    exp_avx512,
    {nullptr, weighted_avx512<1>, weighted_avx512<2>, weighted_avx512<3>, weighted_avx512<4>, weighted_avx512<5>,
     weighted_avx512<6>, weighted_avx512<7>, weighted_avx512<8>},
};
const AttnKernels kAttnAvx2 = {
    "avx2",
    4,
    {nullptr, dots_avx2<1, 2>, dots_avx2<2, 1>, dots_avx2<3, 1>, dots_avx2<4, 1>},
    exp_avx2,
    {nullptr, weighted_avx2<1>, weighted_avx2<2>, weighted_avx2<3>, weighted_avx2<4>},
};

// task (b, g, part): every query of row b over kv head g, for part `part` of the group's heads (all of them unless
// split), `kern->heads` at a time; their scores in the task's scratch, `room` floats a head. Which task computes a
// query changes nothing in it.
void attn_task(void* data, size_t index) {
  const AttnJob& job = *static_cast<const AttnJob*>(data);
  const AttnKernels& kern = *job.kern;
  const int64_t part = int64_t(index) % job.split, bg = int64_t(index) / job.split;
  const int64_t b = bg / job.Hkv, g = bg % job.Hkv, group = job.Hq / job.Hkv;
  const int64_t per_part = (group + job.split - 1) / job.split;
  const int64_t first = part * per_part, last = min64(group, first + per_part);
  const int64_t D = job.D, past = job.seqlens[b] + 1 - job.S;
  const float* keys = job.kc + (b * job.Hkv + g) * job.Pres * D;
  const float* values = job.vc + (b * job.Hkv + g) * job.Pres * D;
  float* scratch = job.scratch + int64_t(index) * kern.heads * job.room;
  for (int64_t i = 0; i < job.S; i++) {
    const int64_t slots = past + i + 1, padded = (slots + 15) / 16 * 16;
    for (int64_t h0 = first; h0 < last; h0 += kern.heads) {
      const int rows = int(min64(kern.heads, last - h0));
      const float* q[kMostHeads];
      float* out[kMostHeads];
      float* scores[kMostHeads];
      for (int r = 0; r < rows; r++) {
        const int64_t h = g * group + h0 + r;
        q[r] = job.q + (b * job.S + i) * job.Hq * D + h * D;
        out[r] = job.out + (b * job.S + i) * job.Hq * D + h * D;
        scores[r] = scratch + r * job.room;
      }
      kern.dots[rows](q, keys, slots, D, scores);
      float sums[kMostHeads];
      for (int r = 0; r < rows; r++) {
        const float* bias = job.bias + b * job.bias_b + (g * group + h0 + r) * job.bias_h + i * job.T;
        float* row = scores[r];
        float most = -3.40282347e38f;
        for (int64_t j = 0; j < slots; j++) {
          float s = job.scale * row[j];
          if (job.softcap > 0.0f) s = job.softcap * tanhf(s / job.softcap);
          s += bias[j];
          row[j] = s;
          most = s > most ? s : most;
        }
        for (int64_t j = 0; j < slots; j++) row[j] -= most;
        for (int64_t j = slots; j < padded; j++) row[j] = -3.40282347e38f;
        kern.exp_rows(row, padded);
        float sum = 0.0f;
        for (int64_t j = 0; j < slots; j++) sum += row[j];
        sums[r] = sum;
      }
      kern.weighted[rows](values, scores, slots, D, out);
      for (int r = 0; r < rows; r++) {
        const float inverse = 1.0f / sums[r];
        for (int64_t d = 0; d < D; d++) out[r][d] *= inverse;
      }
    }
  }
}

#pragma GCC diagnostic pop

// ---- the ISA choice ----

struct Cpu {
  bool avx512, avx2, vnni;  // vnni: AVX-512 VNNI and BW, for the 4-bit kernel
};
Cpu cpu() {
  static const Cpu features = [] {
    __builtin_cpu_init();
    return Cpu{__builtin_cpu_supports("avx512f") != 0,
               __builtin_cpu_supports("avx2") != 0 && __builtin_cpu_supports("fma") != 0,
               __builtin_cpu_supports("avx512f") != 0 && __builtin_cpu_supports("avx512bw") != 0 &&
                   __builtin_cpu_supports("avx512vnni") != 0};
  }();
  return features;
}

struct Choice {
  const Kernels* kernels;  // null: error says why
  const QKernels* q4;      // the 4-bit kernel's: AVX-512 VNNI with AVX-512 (and BW), else AVX2
  const char* error;
};
// AVX-512F if the CPU has it, else AVX2 + FMA; SPECULA_KERNELS_ISA=avx2 / avx512 forces one (other values: automatic)
Choice choose() {
  const char* forced = getenv("SPECULA_KERNELS_ISA");
  const bool want_avx2 = forced && strcmp(forced, "avx2") == 0;
  const bool want_avx512 = forced && strcmp(forced, "avx512") == 0;
  const Cpu features = cpu();
  if (want_avx512 && !features.avx512)
    return {nullptr, nullptr, "dev.specula.kernels: SPECULA_KERNELS_ISA=avx512, but this CPU lacks AVX-512F"};
  if (features.avx512 && !want_avx2) return {&kAvx512, features.vnni ? &kQ4Avx512 : &kQ4Avx2, nullptr};
  if (features.avx2) return {&kAvx2, &kQ4Avx2, nullptr};
  return {nullptr, nullptr,
          "dev.specula.kernels: this CPU lacks AVX2/FMA (PanelMatMul needs AVX2 and FMA, or AVX-512F)"};
}

// ---- the operator ----

constexpr size_t kMaxRank = 32;

struct Op {         // ORT hands &ort back to every callback: the rest rides along
  OrtCustomOp ort;  // first member
  const OrtApi* api;
  const Kernels* kernels;   // PanelMatMul's tiles, else null
  const QKernels* q;        // PanelMatMulQ4's or PanelMatMulQ8's, else null
  const AttnKernels* attn;  // SpeculaAttention's, else null
};

struct TensorInfo {
  int type;
  size_t rank;
  int64_t dims[kMaxRank];
};

// an input's element type and shape; a rank past kMaxRank is an error
OrtStatus* tensor_info(const OrtApi* api, const OrtValue* value, TensorInfo* out) {
  OrtTensorTypeAndShapeInfo* info = nullptr;
  if (OrtStatus* status = GetTensorTypeAndShape(api, value, &info)) return status;
  OrtStatus* status = GetTensorElementType(api, info, &out->type);
  if (!status) status = GetDimensionsCount(api, info, &out->rank);
  if (!status && out->rank > kMaxRank)
    status = CreateStatus(api, kOrtInvalidArgument, "dev.specula.kernels: an input has more than 32 dimensions");
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

// null when X [.., K], Q [N/16, Kp/8 (4 bits) or Kp/4 (8 bits), 64], S and Z [N/16, Kp/B, 16] fit, else what is
// wrong (a message of the operator `bits` names)
const char* q_shape_error(int bits, const TensorInfo& x, const TensorInfo& q, const TensorInfo& s,
                          const TensorInfo& z) {
  const bool four = bits == 4;
  if (x.type != kFloat || q.type != kUint8 || s.type != kFloat || z.type != kFloat)
    return four ? "PanelMatMulQ4: X, S and Z must be float32 and Q uint8"
                : "PanelMatMulQ8: X, S and Z must be float32 and Q uint8";
  if (x.rank < 1)
    return four ? "PanelMatMulQ4: X must have at least one dimension ([.., K])"
                : "PanelMatMulQ8: X must have at least one dimension ([.., K])";
  if (q.rank != 3 || q.dims[2] != kQStepBytes)
    return four ? "PanelMatMulQ4: Q must be [N/16, Kp/8, 64]" : "PanelMatMulQ8: Q must be [N/16, Kp/4, 64]";
  if (s.rank != 3 || s.dims[0] != q.dims[0] || s.dims[2] != 16 || s.dims[1] < 1)
    return four ? "PanelMatMulQ4: S must be [N/16, Kp/B, 16] with Q's N/16"
                : "PanelMatMulQ8: S must be [N/16, Kp/B, 16] with Q's N/16";
  if (z.rank != 3 || z.dims[0] != s.dims[0] || z.dims[1] != s.dims[1] || z.dims[2] != 16)
    return four ? "PanelMatMulQ4: Z must have S's shape" : "PanelMatMulQ8: Z must have S's shape";
  const int64_t Kp = (32 / bits) * q.dims[1], nb = s.dims[1], K = x.dims[x.rank - 1];
  if (Kp % nb != 0 || (Kp / nb) % 16 != 0 || Kp / nb > (four ? kQMaxBlock : kQ8MaxBlock))
    return four ? "PanelMatMulQ4: the block (Kp / S's second dimension) must be a multiple of 16, at most 4096"
                : "PanelMatMulQ8: the block (Kp / S's second dimension) must be a multiple of 16, at most 256";
  if (K > Kp || K <= Kp - Kp / nb)
    return four ? "PanelMatMulQ4: X's last dimension K must end in Q's last block"
                : "PanelMatMulQ8: X's last dimension K must end in Q's last block";
  return nullptr;
}

// a job's tasks on ONNX Runtime's intra-op pool, or inline when it is one task
OrtStatus* run(const OrtApi* api, OrtKernelContext* context, void (*task)(void*, size_t), int64_t tasks, void* job) {
  if (tasks == 1) task(job, 0);
  if (tasks <= 1) return nullptr;
  return KernelContext_ParallelFor(api, context, task, size_t(tasks), 0, job);
}

// the inputs' values and infos, and Y [.., N] (X's shape with N last)
struct Call {
  const OrtValue* in[9];
  TensorInfo info[9];
  void* data[9];
  float* y;
  int64_t M;
};

OrtStatus* inputs(const OrtApi* api, OrtKernelContext* context, size_t count, const char* name, Call* call) {
  for (size_t i = 0; i < count; i++) {
    if (OrtStatus* status = KernelContext_GetInput(api, context, i, &call->in[i])) return status;
    if (!call->in[i]) return CreateStatus(api, kOrtInvalidArgument, name);
    if (OrtStatus* status = tensor_info(api, call->in[i], &call->info[i])) return status;
  }
  return nullptr;
}

OrtStatus* output(const OrtApi* api, OrtKernelContext* context, size_t count, int64_t N, Call* call) {
  const TensorInfo& x = call->info[0];
  call->M = 1;
  for (size_t i = 0; i + 1 < x.rank; i++) call->M *= x.dims[i];
  int64_t yd[kMaxRank];
  memcpy(yd, x.dims, sizeof(int64_t) * x.rank);
  yd[x.rank - 1] = N;
  OrtValue* yv = nullptr;
  if (OrtStatus* status = KernelContext_GetOutput(api, context, 0, yd, x.rank, &yv)) return status;
  void* y = nullptr;
  if (OrtStatus* status = GetTensorMutableData(api, yv, &y)) return status;
  call->y = static_cast<float*>(y);
  for (size_t i = 0; i < count; i++)
    if (OrtStatus* status = GetTensorMutableData(api, const_cast<OrtValue*>(call->in[i]), &call->data[i]))
      return status;
  return nullptr;
}

OrtStatus* compute_f32(const Op& op, OrtKernelContext* context) {
  const OrtApi* api = op.api;
  Call call;
  if (OrtStatus* status = inputs(api, context, 2, "PanelMatMul: X and P are required", &call)) return status;
  if (const char* error = shape_error(call.info[0], call.info[1]))
    return CreateStatus(api, kOrtInvalidArgument, error);
  const int64_t K = call.info[1].dims[1], N = 16 * call.info[1].dims[0];
  if (OrtStatus* status = output(api, context, 2, N, &call)) return status;
  if (call.M == 0 || N == 0) return nullptr;  // an empty Y
  Job job = plan(op.kernels, static_cast<const float*>(call.data[0]), static_cast<const float*>(call.data[1]),
                 call.y, call.M, K, N);
  return run(api, context, run_task, job.tasks(), &job);
}

OrtStatus* compute_q(const Op& op, OrtKernelContext* context) {
  const OrtApi* api = op.api;
  const int bits = op.q->bits;
  Call call;
  if (OrtStatus* status = inputs(api, context, 4,
                                 bits == 4 ? "PanelMatMulQ4: X, Q, S and Z are required"
                                           : "PanelMatMulQ8: X, Q, S and Z are required",
                                 &call))
    return status;
  if (const char* error = q_shape_error(bits, call.info[0], call.info[1], call.info[2], call.info[3]))
    return CreateStatus(api, kOrtInvalidArgument, error);
  const int64_t N = 16 * call.info[1].dims[0];
  if (OrtStatus* status = output(api, context, 4, N, &call)) return status;
  if (call.M == 0 || N == 0) return nullptr;
  QJob job{};
  job.kern = op.q;
  job.x = static_cast<const float*>(call.data[0]);
  job.p = static_cast<const uint8_t*>(call.data[1]);
  job.s = static_cast<const float*>(call.data[2]);
  job.z = static_cast<const float*>(call.data[3]);
  job.y = call.y;
  job.M = call.M, job.K = call.info[0].dims[call.info[0].rank - 1], job.N = N;
  job.Kp = op.q->step_k() * call.info[1].dims[1], job.nb = call.info[2].dims[1], job.B = job.Kp / job.nb;
  q_plan(&job);
  if (!q_quantize(&job))
    return CreateStatus(api, kOrtFail,
                        bits == 4 ? "PanelMatMulQ4: out of memory for X's int8 rows"
                                  : "PanelMatMulQ8: out of memory for X's int8 rows");
  OrtStatus* status = run(api, context, q_run_task, job.tasks(), &job);
  free(job.rows.q);
  return status;
}

// null when SpeculaAttention's inputs fit (see its section), else what is wrong; fills the job's sizes
const char* attention_error(const Call& call, AttnJob* job) {
  const TensorInfo &q = call.info[0], &k = call.info[1], &v = call.info[2], &pk = call.info[3], &pv = call.info[4];
  const TensorInfo &lengths = call.info[5], &total = call.info[6], &bias = call.info[7], &params = call.info[8];
  if (q.type != kFloat || k.type != kFloat || v.type != kFloat || pk.type != kFloat || pv.type != kFloat ||
      bias.type != kFloat || params.type != kFloat || lengths.type != kInt32 || total.type != kInt32)
    return "SpeculaAttention: seqlens_k and total_sequence_length must be int32, the rest float32";
  if (q.rank != 3 || k.rank != 3 || v.rank != 3 || pk.rank != 4 || pv.rank != 4 || bias.rank != 4 ||
      lengths.rank != 1 || params.rank != 1 || params.dims[0] != 4)
    return "SpeculaAttention: query, key, value [B, S, H D]; past [B, Hkv, P, D]; bias [B, H, S, T]; params [4]";
  const float* p = static_cast<const float*>(call.data[8]);
  job->B = q.dims[0], job->S = q.dims[1], job->Hq = int64_t(p[0]), job->Hkv = int64_t(p[1]), job->D = pk.dims[3];
  job->T = *static_cast<const int32_t*>(call.data[6]);
  const int64_t B = job->B, S = job->S, Hq = job->Hq, Hkv = job->Hkv, D = job->D, P = pk.dims[2];
  if (Hq < 1 || Hkv < 1 || Hq % Hkv != 0 || D < 16 || D % 16 != 0)
    return "SpeculaAttention: heads must divide into kv heads, and the head size be a multiple of 16";
  for (size_t i = 0; i < 4; i++)
    if (pv.dims[i] != pk.dims[i]) return "SpeculaAttention: past_key and past_value must have one shape";
  if (pk.dims[0] != B || pk.dims[1] != Hkv || q.dims[2] != Hq * D || k.dims[0] != B || k.dims[1] != S ||
      k.dims[2] != Hkv * D || v.dims[0] != B || v.dims[1] != S || v.dims[2] != Hkv * D || lengths.dims[0] != B)
    return "SpeculaAttention: query, key, value, past and seqlens_k disagree on B, S, heads or head size";
  if ((bias.dims[0] != 1 && bias.dims[0] != B) || (bias.dims[1] != 1 && bias.dims[1] != Hq) || bias.dims[2] != S ||
      bias.dims[3] != job->T)
    return "SpeculaAttention: attention_bias must be [1 or B, 1 or heads, S, total_sequence_length]";
  job->Pres = P > job->T ? P : job->T;
  const int32_t* seqlens = static_cast<const int32_t*>(call.data[5]);
  for (int64_t b = 0; b < B; b++) {
    const int64_t whole = int64_t(seqlens[b]) + 1, past = whole - S;
    if (past < 0 || past > P || whole > job->T)
      return "SpeculaAttention: a row's seqlens_k + 1 must be at least S, at most total_sequence_length, and "
             "leave at most the past's slots before the new ones";
  }
  job->bias_h = bias.dims[1] == 1 ? 0 : S * job->T;
  job->bias_b = bias.dims[0] == 1 ? 0 : bias.dims[1] * S * job->T;
  job->scale = p[2] != 0.0f ? p[2] : 1.0f / sqrtf(float(D));
  job->softcap = p[3];
  return nullptr;
}

OrtStatus* compute_attention(const Op& op, OrtKernelContext* context) {
  const OrtApi* api = op.api;
  Call call;
  if (OrtStatus* status = inputs(api, context, 9, "SpeculaAttention: every input is required", &call)) return status;
  for (size_t i = 5; i < 9; i++)  // the small inputs, read before the outputs exist
    if (OrtStatus* status = GetTensorMutableData(api, const_cast<OrtValue*>(call.in[i]), &call.data[i]))
      return status;
  AttnJob job{};
  if (const char* error = attention_error(call, &job)) return CreateStatus(api, kOrtInvalidArgument, error);
  const int64_t B = job.B, S = job.S, Hkv = job.Hkv, D = job.D, P = call.info[3].dims[2];
  if (OrtStatus* status = output(api, context, 5, job.Hq * D, &call)) return status;
  const int64_t present[4] = {B, Hkv, job.Pres, D};
  OrtValue* pkv = nullptr;
  OrtValue* pvv = nullptr;
  void *pk = nullptr, *pv = nullptr;
  if (OrtStatus* status = KernelContext_GetOutput(api, context, 1, present, 4, &pkv)) return status;
  if (OrtStatus* status = KernelContext_GetOutput(api, context, 2, present, 4, &pvv)) return status;
  if (OrtStatus* status = GetTensorMutableData(api, pkv, &pk)) return status;
  if (OrtStatus* status = GetTensorMutableData(api, pvv, &pv)) return status;
  float* kc = static_cast<float*>(pk);
  float* vc = static_cast<float*>(pv);
  const float* past_k = static_cast<const float*>(call.data[3]);
  const float* past_v = static_cast<const float*>(call.data[4]);
  const int32_t* seqlens = static_cast<const int32_t*>(call.data[5]);
  for (int64_t b = 0; b < B; b++) {
    const int64_t past = int64_t(seqlens[b]) + 1 - S;
    for (int64_t g = 0; g < Hkv; g++) {
      float* kr = kc + (b * Hkv + g) * job.Pres * D;
      float* vr = vc + (b * Hkv + g) * job.Pres * D;
      if (kc != past_k && past > 0) memcpy(kr, past_k + (b * Hkv + g) * P * D, sizeof(float) * size_t(past * D));
      if (vc != past_v && past > 0) memcpy(vr, past_v + (b * Hkv + g) * P * D, sizeof(float) * size_t(past * D));
      for (int64_t i = 0; i < S; i++) {
        const int64_t from = (b * S + i) * Hkv * D + g * D;
        memcpy(kr + (past + i) * D, static_cast<const float*>(call.data[1]) + from, sizeof(float) * size_t(D));
        memcpy(vr + (past + i) * D, static_cast<const float*>(call.data[2]) + from, sizeof(float) * size_t(D));
      }
    }
  }
  job.q = static_cast<const float*>(call.data[0]);
  job.bias = static_cast<const float*>(call.data[7]);
  job.out = call.y;
  job.kc = kc, job.vc = vc, job.seqlens = seqlens, job.kern = op.attn;
  job.room = (job.T + 15) / 16 * 16;
  // small calls run inline, a kv head's group in one task (its cache read once); larger ones on the pool, a lone
  // kv head's group split in two so that two threads share it (its cache read twice, at once)
  const bool pooled = B * Hkv * S * job.T * D * (job.Hq / Hkv) >= kAttnTaskWork;
  job.split = pooled && B * Hkv < 2 && job.Hq / Hkv > 1 ? 2 : 1;
  const int64_t tasks = B * Hkv * job.split;
  job.scratch = static_cast<float*>(malloc(sizeof(float) * size_t(job.room * tasks * op.attn->heads)));
  if (!job.scratch) return CreateStatus(api, kOrtFail, "SpeculaAttention: out of memory for the scores");
  OrtStatus* status = nullptr;
  if (!pooled) {
    for (int64_t t = 0; t < tasks; t++) attn_task(&job, size_t(t));
  } else {
    status = KernelContext_ParallelFor(api, context, attn_task, size_t(tasks), 0, &job);
  }
  free(job.scratch);
  return status;
}

OrtStatus* compute(void* kernel, OrtKernelContext* context) {
  const Op& op = *static_cast<const Op*>(kernel);
  if (op.attn) return compute_attention(op, context);
  return op.q ? compute_q(op, context) : compute_f32(op, context);
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
const QKernels* quantized(const OrtCustomOp* op) { return reinterpret_cast<const Op*>(op)->q; }
bool is_attention(const OrtCustomOp* op) { return reinterpret_cast<const Op*>(op)->attn != nullptr; }
const char* name(const OrtCustomOp* op) {
  return is_attention(op) ? "SpeculaAttention" : quantized(op) ? quantized(op)->op_name() : "PanelMatMul";
}
const char* provider(const OrtCustomOp*) { return "CPUExecutionProvider"; }
int input_type(const OrtCustomOp* op, size_t index) {
  if (is_attention(op)) return index == 5 || index == 6 ? kInt32 : kFloat;
  return quantized(op) && index == 1 ? kUint8 : kFloat;
}
size_t input_count(const OrtCustomOp* op) { return is_attention(op) ? 9 : quantized(op) ? 4 : 2; }
int float_type(const OrtCustomOp*, size_t) { return kFloat; }
size_t output_count(const OrtCustomOp* op) { return is_attention(op) ? 3 : 1; }
int required(const OrtCustomOp*, size_t) { return 0; }     // INPUT_OUTPUT_REQUIRED
int default_memory(const OrtCustomOp*, size_t) { return 0; }  // OrtMemTypeDefault
int min_arity(const OrtCustomOp*) { return 1; }              // (no variadic input or output)
int homogeneous(const OrtCustomOp*) { return 0; }

Op make_op(const OrtApi* api, const Kernels* kernels, const QKernels* q, const AttnKernels* attn) {
  OrtCustomOp ort;
  ort.version = 16;
  ort.CreateKernel = create_kernel;
  ort.GetName = name;
  ort.GetExecutionProviderType = provider;
  ort.GetInputType = input_type;
  ort.GetInputTypeCount = input_count;
  ort.GetOutputType = float_type;
  ort.GetOutputTypeCount = output_count;
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
  return Op{ort, api, kernels, q, attn};
}

// Once a process: keep this library loaded for good (dlopen again with RTLD_NODELETE: closing the session options
// that loaded it dlcloses it, while live sessions still call its code), and build the operators, constant from
// then on. The first registration's OrtApi serves every later one (one ONNX Runtime a process).
const char kAnchor = 0;  // an address inside this library, for dladdr
struct Registry {
  Op avx512, avx2, q4_avx512, q4_avx2, q8_avx512, q8_avx2, attn_avx512, attn_avx2;
};
const Registry& registry(const OrtApi* api) {
  static const Registry ops = [api] {
    Dl_info self;
    if (dladdr(&kAnchor, &self) && self.dli_fname) dlopen(self.dli_fname, RTLD_NOW | RTLD_NODELETE);
    return Registry{make_op(api, &kAvx512, nullptr, nullptr),     make_op(api, &kAvx2, nullptr, nullptr),
                    make_op(api, nullptr, &kQ4Avx512, nullptr),   make_op(api, nullptr, &kQ4Avx2, nullptr),
                    make_op(api, nullptr, &kQ8Avx512, nullptr),   make_op(api, nullptr, &kQ8Avx2, nullptr),
                    make_op(api, nullptr, nullptr, &kAttnAvx512), make_op(api, nullptr, nullptr, &kAttnAvx2)};
  }();
  return ops;
}

}  // namespace

// The library's entry (ONNX Runtime's RegisterCustomOpsLibrary): domain dev.specula.kernels with PanelMatMul,
// PanelMatMulQ4, PanelMatMulQ8 and SpeculaAttention on the ISAs chosen now, or an error status when this CPU cannot run them or ONNX Runtime is older
// than 1.17.
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
  const Op& q4 = choice.q4 == &kQ4Avx512 ? ops.q4_avx512 : ops.q4_avx2;
  const Op& q8 = choice.q4 == &kQ4Avx512 ? ops.q8_avx512 : ops.q8_avx2;  // the same ISA as 4 bits
  const Op& attention = choice.kernels == &kAvx512 ? ops.attn_avx512 : ops.attn_avx2;
  OrtCustomOpDomain* domain = nullptr;  // owned by the session options' users from here on; never freed
  OrtStatus* status = CreateCustomOpDomain(api, "dev.specula.kernels", &domain);
  if (!status) status = CustomOpDomain_Add(api, domain, &op.ort);
  if (!status) status = CustomOpDomain_Add(api, domain, &q4.ort);
  if (!status) status = CustomOpDomain_Add(api, domain, &q8.ort);
  if (!status) status = CustomOpDomain_Add(api, domain, &attention.ort);
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


// ---- PanelMatMulQ4 and PanelMatMulQ8: the same checks on 4- and 8-bit weights ----

struct Q4Weights {  // W [Kp, N] in 0..15 (0..255 at 8 bits), S and Z [N/16, nb, 16], and the packed panels
  int64_t K, N, B, Kp, nb;
  int bits;
  std::vector<uint8_t> w4, p;
  Floats s, z;              // as the kernel reads them (grouped)
  Floats s_plain, z_plain;  // [N/16, nb, 16]
};

Q4Weights q4_weights(int64_t K, int64_t N, int64_t B, Rng& rng, int bits = 4) {
  Q4Weights w{K, N, B, ceil_div(K, B) * B, ceil_div(K, B), bits, {}, {}, {}, {}, {}, {}};
  const int most = (1 << bits) - 1, step_k = 32 / bits;
  w.w4.assign(size_t(w.Kp * N), 0);
  for (int64_t k = 0; k < K; k++)
    for (int64_t n = 0; n < N; n++) w.w4[k * N + n] = uint8_t(int(rng.next() * 1e6f) & most);
  w.s.resize(size_t(N * w.nb)), w.z.resize(size_t(N * w.nb));
  for (int64_t j = 0; j < N / 16; j++)
    for (int64_t b = 0; b < w.nb; b++)
      for (int64_t c = 0; c < 16; c++) {
        w.s[(j * w.nb + b) * 16 + c] = std::fabs(rng.next()) / 8 + 1e-4f;
        w.z[(j * w.nb + b) * 16 + c] = float(int(rng.next() * 1e6f) & most);
      }
  // panels in groups of 4, interleaved by step (Q) and by block (S, Z); the tail panels one by one
  const int64_t groups_end = N / 64 * 4;
  Floats s(w.s), z(w.z);
  const int64_t panel_bytes = w.Kp / step_k * 64;
  w.p.assign(size_t(N / 16 * panel_bytes), 0);
  for (int64_t j = 0; j < N / 16; j++) {
    const bool grouped = j < groups_end;
    const int64_t first = grouped ? j - j % 4 : j, within = grouped ? j % 4 : 0, lds = grouped ? 256 : 64;
    for (int64_t k = 0; k < w.Kp; k++)
      for (int64_t c = 0; c < 16; c++) {
        const int64_t step = k / step_k, i = k % step_k;
        uint8_t& byte = w.p[size_t(first * panel_bytes + step * lds + within * 64 + 4 * c + i % 4)];
        byte |= uint8_t(w.w4[k * N + 16 * j + c] << (i < 4 ? 0 : 4));  // at 8 bits i < 4: the whole byte
      }
    for (int64_t b = 0; b < w.nb; b++)
      for (int64_t c = 0; c < 16; c++) {
        const int64_t at = first * 16 * w.nb + b * (grouped ? 64 : 16) + within * 16 + c;
        w.s[size_t(at)] = s[size_t((j * w.nb + b) * 16 + c)];
        w.z[size_t(at)] = z[size_t((j * w.nb + b) * 16 + c)];
      }
  }
  w.s_plain = s, w.z_plain = z;
  return w;
}

// the contract itself, scalar: quantize each row's blocks, then y = fma(c, S d, y) block by block from y = 0
Floats q4_reference(const Floats& x, const Q4Weights& w, int64_t M) {
  Floats y(size_t(M * w.N));
  for (int64_t m = 0; m < M; m++) {
    std::vector<int> q(size_t(w.Kp), 0);
    Floats d(size_t(w.nb)), t(size_t(w.nb));
    for (int64_t b = 0; b < w.nb; b++) {
      float a = 0.0f;
      bool bad = false;
      for (int64_t k = b * w.B; k < std::min((b + 1) * w.B, w.K); k++) {
        const float v = std::fabs(x[m * w.K + k]);
        bad |= !(v <= 3.40282347e38f);
        a = v > a ? v : a;
      }
      int sum = 0;
      if (!bad && a > 0.0f)
        for (int64_t k = b * w.B; k < std::min((b + 1) * w.B, w.K); k++)
          sum += q[k] = int(std::nearbyint(x[m * w.K + k] * (127.0f / a)));
      d[b] = bad ? NAN : a / 127.0f, t[b] = float(sum);
    }
    for (int64_t n = 0; n < w.N; n++) {
      float acc = 0.0f;
      for (int64_t b = 0; b < w.nb; b++) {
        const int64_t at = ((n / 16) * w.nb + b) * 16 + n % 16;
        int dot = 0;
        for (int64_t k = b * w.B; k < (b + 1) * w.B; k++) dot += q[k] * w.w4[k * w.N + n];
        const float c = float(dot - int(w.z_plain[at]) * int(t[b]));
        acc = std::fmaf(c, w.s_plain[at] * d[b], acc);
      }
      y[m * w.N + n] = acc;
    }
  }
  return y;
}

Floats q4_matmul(const QKernels* kern, const float* x, const Q4Weights& w, int64_t M, Split split = Split::plan) {
  Floats y(size_t(M * w.N), NAN);
  QJob job{};
  job.kern = kern, job.x = x, job.p = w.p.data(), job.s = w.s.data(), job.z = w.z.data(), job.y = y.data();
  job.M = M, job.K = w.K, job.N = w.N, job.Kp = w.Kp, job.nb = w.nb, job.B = w.B;
  q_plan(&job);
  if (split == Split::fine_reversed) job.units_per_task = 1, job.unit_tasks = job.units, job.rows_per_task = 3,
                                     job.row_tasks = ceil_div(M, 3);
  if (split == Split::one_task) job.units_per_task = job.units, job.unit_tasks = 1, job.rows_per_task = M,
                                job.row_tasks = 1;
  if (!q_quantize(&job)) abort();
  const int64_t tasks = job.tasks();
  if (split == Split::two_threads) {
    std::thread other([&] {
      for (int64_t t = 1; t < tasks; t += 2) q_run_task(&job, size_t(t));
    });
    for (int64_t t = 0; t < tasks; t += 2) q_run_task(&job, size_t(t));
    other.join();
  } else if (split == Split::fine_reversed) {
    for (int64_t t = tasks - 1; t >= 0; t--) q_run_task(&job, size_t(t));
  } else {
    for (int64_t t = 0; t < tasks; t++) q_run_task(&job, size_t(t));
  }
  free(job.rows.q);
  return y;
}

struct Q4Case {
  int64_t K, N, B;
};
// K a multiple of the block and not (the last block padded), tail panels (N = 16 * 5, 16 * 67), blocks 16-256
const Q4Case kQ4Cases[] = {{128, 64, 32}, {100, 80, 32}, {640, 1072, 128}, {1000, 48, 256}, {48, 16, 16},
                           {384, 1024, 64}};

// (a)-(d) as for PanelMatMul, and (f): the result near X times the dequantized W in float
void q4_check_case(const QKernels* kern, const QKernels* other, const Q4Case& c, Rng& rng, Tally* rows, Tally* isa,
                   Tally* split, Tally* ref, double* worst) {
  const Q4Weights w = q4_weights(c.K, c.N, c.B, rng, kern->bits);
  Floats x = random_floats(size_t(kMostRows * c.K), rng);
  for (int64_t k = 0; k < c.K; k++) x[size_t(5 * c.K + k)] = 0.0f;  // row 5: all zeros
  x[size_t(6 * c.K + c.K / 2)] = NAN;                                // row 6: a NaN in one block
  const Floats expect = q4_reference(x, w, kMostRows);
  Floats alone(size_t(kMostRows * c.N));
  for (int64_t m = 0; m < kMostRows; m++) {
    const Floats y = q4_matmul(kern, x.data() + m * c.K, w, 1);
    memcpy(alone.data() + m * c.N, y.data(), sizeof(float) * size_t(c.N));
    ref->add(memcmp(y.data(), expect.data() + m * c.N, sizeof(float) * size_t(c.N)) == 0);
  }
  for (int64_t M : kRowCounts) {
    const Floats y = q4_matmul(kern, x.data(), w, M);
    for (int64_t m = 0; m < M; m++) rows->add(same_row(y, m, alone, m, c.N));
    if (other) isa->add(memcmp(q4_matmul(other, x.data(), w, M).data(), y.data(), sizeof(float) * y.size()) == 0);
    for (Split s : {Split::fine_reversed, Split::one_task, Split::two_threads})
      split->add(memcmp(q4_matmul(kern, x.data(), w, M, s).data(), y.data(), sizeof(float) * y.size()) == 0);
  }
  for (int64_t m = 0; m < 8; m++) {  // (f) relative to the largest |y| of the row
    if (m == 6) continue;
    double most = 0, diff = 0;
    for (int64_t n = 0; n < c.N; n++) {
      double exact = 0;
      for (int64_t k = 0; k < c.K; k++) {
        const int64_t at = ((n / 16) * w.nb + k / c.B) * 16 + n % 16;
        exact += double(x[m * c.K + k]) * (double(w.w4[k * c.N + n]) - w.z_plain[at]) * w.s_plain[at];
      }
      most = std::max(most, std::fabs(exact));
      diff = std::max(diff, std::fabs(exact - alone[m * c.N + n]));
    }
    if (most > 0) *worst = std::max(*worst, diff / most);
  }
}

// (a)-(d) and (f) for PanelMatMulQ4 or PanelMatMulQ8 (other: the other ISA's tiles, or null), reported; the failures
int64_t q_check(const QKernels* kern, const QKernels* other, Rng& rng) {
  Tally rows, isa, split, ref;
  double worst = 0;
  for (const Q4Case& c : kQ4Cases) q4_check_case(kern, other, c, rng, &rows, &isa, &split, &ref, &worst);
  printf("%s (%d bits, int8 activations):\n", kern->op_name(), kern->bits);
  report("(a) rows of calls of 1-9, 17, 64, 300 rows against the row alone", rows);
  if (other)
    report(other->name == kQ4Avx2.name ? "(b) AVX2 calls against AVX-512 VNNI" : "(b) AVX-512 VNNI calls against AVX2",
           isa);
  else
    printf("(b) skipped: this CPU lacks AVX-512 VNNI\n");
  report("(c) calls split in other tasks, orders or threads against the plan's", split);
  report("(d) rows against the scalar reference", ref);
  const bool near = worst < 0.02;
  printf("(f) largest difference from X times the dequantized W in double: %.2e of the row's largest |y|%s\n", worst,
         near ? "" : "   <-- FAILED (above 0.02)");
  return rows.differing + isa.differing + split.differing + ref.differing + (near ? 0 : 1);
}

// (e) for 4 and 8 bits: a Gemma-3-270M-shaped set (18 layers of 7 matrices and the head), blocks of 128
void q4_timing(const QKernels* kern) {
  Rng rng{777};
  std::vector<Q4Weights> set;
  const int64_t layer[7][2] = {{640, 1024}, {640, 256}, {640, 256}, {1024, 640}, {640, 2048}, {640, 2048}, {2048, 640}};
  for (int l = 0; l < 18; l++)
    for (auto& s : layer) set.push_back(q4_weights(s[0], s[1], 128, rng, kern->bits));
  set.push_back(q4_weights(640, 4096, 128, rng, kern->bits));
  double bytes = 0;
  for (auto& w : set) bytes += double(w.p.size()) + 8.0 * double(w.s.size());
  printf("(e) one thread, %d bits (%s), a Gemma-3-270M-shaped set (%zu matrices, %.1f MB with S and Z):\n",
         kern->bits, kern->name, set.size(), bytes / 1e6);
  for (int64_t M : {1, 2, 4, 8, 64}) {
    const Floats x = random_floats(size_t(M * 2048), rng);
    double best = 1e30;
    for (int trial = 0; trial < 7; trial++) {
      const auto start = std::chrono::steady_clock::now();
      for (auto& w : set) q4_matmul(kern, x.data(), w, M);
      best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
    }
    printf("    %3lld row(s): %8.3f ms  %6.1f GB/s\n", (long long)M, best * 1e3, bytes / best / 1e9);
  }
}


// ---- SpeculaAttention: a query alone against the same query in a call of several, the ISAs, a double reference ----

struct AttnCase {
  int64_t B, Hq, Hkv, D, past, S;
  float softcap;
};

// the keys' and values' cache [B, Hkv, cap, D] after `past + S` tokens, the queries [B, S total, Hq D], and a bias
// value for (absolute query slot, key slot): holes of -1e9 at some slots
struct AttnData {
  Floats kc, vc, q;
  int64_t cap;
};
float attn_bias(int64_t query, int64_t key) { return (key * 7 + query) % 11 == 3 && key != query ? -1e9f : 0.01f * float(key % 5); }

// rows [from, from + count) of every batch row as one call over a cache holding `from` tokens: outputs [B, count, Hq D]
Floats attn_call(const AttnKernels* kern, const AttnCase& c, const AttnData& data, int64_t from, int64_t count,
                 int64_t split = 1) {
  const int64_t T = from + count;
  std::vector<int32_t> seqlens(size_t(c.B), int32_t(T - 1));
  Floats bias(size_t(count * T));
  for (int64_t i = 0; i < count; i++)
    for (int64_t j = 0; j < T; j++) bias[size_t(i * T + j)] = attn_bias(from + i, j);
  Floats q(size_t(c.B * count * c.Hq * c.D)), out(q.size(), NAN);
  const int64_t total = c.past + c.S;
  for (int64_t b = 0; b < c.B; b++)
    memcpy(q.data() + b * count * c.Hq * c.D, data.q.data() + (b * total + from) * c.Hq * c.D,
           sizeof(float) * size_t(count * c.Hq * c.D));
  AttnJob job{};
  job.q = q.data(), job.bias = bias.data(), job.out = out.data(), job.kc = data.kc.data(), job.vc = data.vc.data();
  job.seqlens = seqlens.data();
  job.B = c.B, job.S = count, job.Hq = c.Hq, job.Hkv = c.Hkv, job.D = c.D, job.T = T, job.Pres = data.cap;
  job.bias_b = 0, job.bias_h = 0, job.scale = 1.0f / sqrtf(float(c.D)), job.softcap = c.softcap, job.kern = kern;
  job.room = (T + 15) / 16 * 16;
  job.split = split;
  Floats scratch(size_t(job.room * c.B * c.Hkv * split * kern->heads));
  job.scratch = scratch.data();
  for (int64_t t = 0; t < c.B * c.Hkv * split; t++) attn_task(&job, size_t(t));
  return out;
}

void attn_check_case(const AttnKernels* kern, const AttnKernels* other, const AttnCase& c, Rng& rng, Tally* rows,
                     Tally* isa, double* worst) {
  AttnData data;
  const int64_t total = c.past + c.S;
  data.cap = total + 3;
  data.kc = random_floats(size_t(c.B * c.Hkv * data.cap * c.D), rng);
  data.vc = random_floats(data.kc.size(), rng);
  data.q = random_floats(size_t(c.B * total * c.Hq * c.D), rng);
  for (auto& v : data.q) v *= 8;  // scores of a few units: a softmax that is not flat
  const Floats call = attn_call(kern, c, data, c.past, c.S);
  if (other) isa->add(memcmp(attn_call(other, c, data, c.past, c.S).data(), call.data(), sizeof(float) * call.size()) == 0);
  // the group's heads split in tasks: the same bits
  isa->add(memcmp(attn_call(kern, c, data, c.past, c.S, 2).data(), call.data(), sizeof(float) * call.size()) == 0);
  const int64_t width = c.Hq * c.D;
  for (int64_t i = 0; i < c.S; i++) {
    const Floats alone = attn_call(kern, c, data, c.past + i, 1);
    for (int64_t b = 0; b < c.B; b++)
      rows->add(memcmp(alone.data() + b * width, call.data() + (b * c.S + i) * width, sizeof(float) * size_t(width)) == 0);
  }
  for (int64_t b = 0; b < c.B; b++)  // the double reference
    for (int64_t h = 0; h < c.Hq; h++)
      for (int64_t i = 0; i < c.S; i++) {
        const int64_t g = h / (c.Hq / c.Hkv), slots = c.past + i + 1;
        const float* q = data.q.data() + (b * total + c.past + i) * width + h * c.D;
        std::vector<double> s(static_cast<size_t>(slots));
        double most = -1e300;
        for (int64_t j = 0; j < slots; j++) {
          double dot = 0;
          for (int64_t d = 0; d < c.D; d++) dot += double(q[d]) * data.kc[size_t(((b * c.Hkv + g) * data.cap + j) * c.D + d)];
          dot /= std::sqrt(double(c.D));
          if (c.softcap > 0) dot = c.softcap * std::tanh(dot / c.softcap);
          s[size_t(j)] = dot + attn_bias(c.past + i, j);
          most = std::max(most, s[size_t(j)]);
        }
        double sum = 0;
        for (auto& v : s) sum += v = std::exp(v - most);
        for (int64_t d = 0; d < c.D; d++) {
          double o = 0;
          for (int64_t j = 0; j < slots; j++) o += s[size_t(j)] * data.vc[size_t(((b * c.Hkv + g) * data.cap + j) * c.D + d)];
          o /= sum;
          *worst = std::max(*worst, std::fabs(o - call[size_t((b * c.S + i) * width + h * c.D + d)]));
        }
      }
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
  printf("ISA: %s, 4 bits: %s (SpeculaKernelsIsa: %s; SPECULA_KERNELS_ISA=%s)\n", kern->name, choice.q4->name,
         SpeculaKernelsIsa(), getenv("SPECULA_KERNELS_ISA") ? getenv("SPECULA_KERNELS_ISA") : "");
  Tally rows, isa, split, ref;
  Rng rng{42};
  for (const Case& c : kCases) check_case(kern, other, c, rng, &rows, &isa, &split, &ref);
  printf("PanelMatMul (float32):\n");
  report("(a) rows of calls of 1-9, 17, 64, 300 rows against the row alone", rows);
  if (other)
    report(other == &kAvx2 ? "(b) AVX2 calls against AVX-512" : "(b) AVX-512 calls against AVX2", isa);
  else
    printf("(b) skipped: this CPU lacks AVX-512F\n");
  report("(c) calls split in other tasks, orders, threads or paths against the plan's", split);
  report("(d) rows against the scalar fmaf reference", ref);
  int64_t differing = rows.differing + isa.differing + split.differing + ref.differing;
  const QKernels* q4 = choice.q4;
  const QKernels* q4_other = cpu().vnni ? (q4 == &kQ4Avx512 ? &kQ4Avx2 : &kQ4Avx512) : nullptr;
  const QKernels* q8 = q4 == &kQ4Avx512 ? &kQ8Avx512 : &kQ8Avx2;
  const QKernels* q8_other = q4_other ? (q8 == &kQ8Avx512 ? &kQ8Avx2 : &kQ8Avx512) : nullptr;
  differing += q_check(q4, q4_other, rng) + q_check(q8, q8_other, rng);
  const AttnKernels* attn = kern == &kAvx512 ? &kAttnAvx512 : &kAttnAvx2;
  const AttnKernels* attn_other = other ? (attn == &kAttnAvx512 ? &kAttnAvx2 : &kAttnAvx512) : nullptr;
  Tally a_rows, a_isa;
  double a_worst = 0;
  const AttnCase attn_cases[] = {{2, 4, 2, 32, 7, 5, 0.0f}, {1, 4, 1, 256, 60, 3, 0.0f}, {1, 14, 2, 64, 1100, 4, 0.0f},
                                 {2, 8, 8, 16, 0, 6, 50.0f}, {1, 2, 1, 128, 33, 1, 0.0f}};
  for (const AttnCase& c : attn_cases) attn_check_case(attn, attn_other, c, rng, &a_rows, &a_isa, &a_worst);
  printf("SpeculaAttention:\n");
  report("(a) queries of calls of 1-6 queries against the query alone", a_rows);
  report(attn_other ? "(b, c) AVX2 against AVX-512, and a group's heads split in two tasks"
                    : "(c) a group's heads split in two tasks", a_isa);
  const bool a_near = a_worst < 1e-5;
  printf("(f) largest difference from a double reference: %.2e%s\n", a_worst, a_near ? "" : "   <-- FAILED (above 1e-5)");
  differing += a_rows.differing + a_isa.differing + (a_near ? 0 : 1);
  printf("%s\n", differing ? "FAILED: results differ" : "all bit-identical");
  timing(kern);
  q4_timing(q4);
  q4_timing(q8);
  return differing != 0;
}
#endif  // SPECULA_KERNELS_CHECK
