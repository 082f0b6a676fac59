// The CUDA kernels of the chronos2 GPU executor, compiled with NVRTC when a model is loaded.
// Every buffer is dense row-major float unless said otherwise; shapes use the letters of
// `chronos2::encoder` (B rows, S tokens, D hidden, H heads of DK, I = H*DK). The loader
// prepends `#define DK <head size>`. Matrix products run in cuBLAS, not here.
//
// Compiled without fused multiply-add contraction (--fmad=false) and without fast math, so
// every element is computed as the CPU reference computes it, up to summation order. The
// per-head loops over DK are unrolled so that a query and its accumulator stay in registers.

#ifndef DK
#error "DK (the attention head size) must be defined by the loader"
#endif

// finfo(float32).min: the additive mask of a masked key (not -inf, as the reference).
#define MASK_VALUE (-3.402823466e38f)

// -inf, the running maximum before the first key (NVRTC has no math.h INFINITY).
#define NEG_INFINITY (__int_as_float(0xff800000))

// T5 RMS norm of each D-wide row of x into out: w * (x / sqrt(mean(x^2) + eps)), the mean of
// squares summed in double as the CPU kernel does. One block per row.
extern "C" __global__ void rms_norm(const float* x, float* out, const float* w, int d, float eps) {
    const float* row = x + (size_t)blockIdx.x * d;
    float* dst = out + (size_t)blockIdx.x * d;
    double sum = 0.0;
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        double v = row[i];
        sum += v * v;
    }
    __shared__ double partial[32];
    for (int offset = 16; offset > 0; offset /= 2) {
        sum += __shfl_down_sync(0xffffffffu, sum, offset);
    }
    if ((threadIdx.x & 31) == 0) partial[threadIdx.x >> 5] = sum;
    __syncthreads();
    if (threadIdx.x < 32) {
        double total = threadIdx.x < (blockDim.x + 31) / 32 ? partial[threadIdx.x] : 0.0;
        for (int offset = 16; offset > 0; offset /= 2) {
            total += __shfl_down_sync(0xffffffffu, total, offset);
        }
        if (threadIdx.x == 0) partial[0] = total;
    }
    __syncthreads();
    float mean_square = (float)(partial[0] / d);
    float inv = 1.0f / sqrtf(mean_square + eps);
    for (int i = threadIdx.x; i < d; i += blockDim.x) {
        dst[i] = w[i] * (row[i] * inv);
    }
}

// In-place ReLU over n floats (NaN becomes 0, as Rust's f32::max).
extern "C" __global__ void relu(float* x, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] = fmaxf(x[i], 0.0f);
}

// y[r * ldy + c] += bias[c] for r < rows, c < n (rows beyond the grid's y size loop).
extern "C" __global__ void add_bias(float* y, const float* bias, int rows, int n, int ldy) {
    int c = blockIdx.x * blockDim.x + threadIdx.x;
    if (c >= n) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) y[(size_t)r * ldy + c] += bias[c];
}

// out[i] = bf16 bits of x[i], rounded to nearest even (NaN stays a quiet NaN): the rounding
// of chronos2_kernels::bf16::to_bf16.
extern "C" __global__ void round_bf16(const float* x, unsigned short* out, long long n) {
    long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    unsigned int bits = __float_as_uint(x[i]);
    unsigned int rounded = (bits + 0x7FFFu + ((bits >> 16) & 1u)) >> 16;
    out[i] = (unsigned short)(isnan(x[i]) ? ((bits >> 16) | 0x40u) : rounded);
}

// dst[r * dst_stride + i] = src[r * src_stride + i] for r < rows, i < width (a src_stride of 0
// broadcasts one row; rows beyond the grid's y size loop).
extern "C" __global__ void copy_rows(const float* src, long long src_stride, float* dst, long long dst_stride, int rows, int width) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= width) return;
    for (int r = blockIdx.y; r < rows; r += gridDim.y) dst[(size_t)r * dst_stride + i] = src[(size_t)r * src_stride + i];
}

// Rotary embedding of Q and K in qkv (B*S, 3I), non-interleaved: for i < DK/2,
// x[i] = a*cos - b*sin, x[i + DK/2] = b*cos + a*sin with a = x[i], b = x[i + DK/2];
// cos/sin are (S, DK/2). Grid: (B*S, 2H); block: DK/2 threads.
extern "C" __global__ void rope(float* qkv, const float* cos_table, const float* sin_table, int tokens, int inner) {
    int token = blockIdx.x;
    int part = blockIdx.y / (inner / DK);  // 0: Q, 1: K
    int head = blockIdx.y % (inner / DK);
    int i = threadIdx.x;
    const int half = DK / 2;
    float* x = qkv + (size_t)token * 3 * inner + part * inner + head * DK;
    int pos = token % tokens;
    float c = cos_table[pos * half + i];
    float s = sin_table[pos * half + i];
    float a = x[i];
    float b = x[i + half];
    x[i] = a * c - b * s;
    x[i + half] = b * c + a * s;
}

// Number of queries (threads) and keys per tile of the time attention.
#define TILE 64

// Unscaled time attention, flash style: per (row, head), queries first_query..S attend to
// the S keys of their row, softmax(q.k + mask) . v computed in one pass with a running max,
// K and V staged through shared memory a tile at a time. ctx is (B*(S - first_query), I).
// Grid: (ceil(queries / TILE), H, B); block: TILE threads, one query each.
extern "C" __global__ void time_attention(const float* qkv, const float* key_mask, float* ctx, int tokens, int first_query, int inner) {
    __shared__ float keys[TILE][DK];
    __shared__ float values[TILE][DK];
    __shared__ float mask[TILE];
    int row = blockIdx.z;
    int head = blockIdx.y;
    int queries = tokens - first_query;
    int query = blockIdx.x * TILE + threadIdx.x;
    bool active = query < queries;
    size_t stride = 3 * (size_t)inner;
    const float* base = qkv + (size_t)row * tokens * stride + head * DK;
    float q[DK];
    float acc[DK];
    #pragma unroll
    for (int d = 0; d < DK; d++) {
        q[d] = active ? base[(size_t)(first_query + query) * stride + d] : 0.0f;
        acc[d] = 0.0f;
    }
    float running_max = NEG_INFINITY;
    float total = 0.0f;
    for (int start = 0; start < tokens; start += TILE) {
        int count = min(TILE, tokens - start);
        __syncthreads();
        for (int e = threadIdx.x; e < count * DK; e += TILE) {
            int k = e / DK, d = e % DK;
            keys[k][d] = base[(size_t)(start + k) * stride + inner + d];
            values[k][d] = base[(size_t)(start + k) * stride + 2 * inner + d];
        }
        for (int k = threadIdx.x; k < count; k += TILE) {
            mask[k] = (1.0f - key_mask[(size_t)row * tokens + start + k]) * MASK_VALUE;
        }
        __syncthreads();
        if (!active) continue;
        for (int k = 0; k < count; k++) {
            float score = 0.0f;
            #pragma unroll
            for (int d = 0; d < DK; d++) score += q[d] * keys[k][d];
            score += mask[k];
            if (score > running_max) {
                float correction = expf(running_max - score);
                total *= correction;
                #pragma unroll
                for (int d = 0; d < DK; d++) acc[d] *= correction;
                running_max = score;
            }
            float weight = expf(score - running_max);
            total += weight;
            #pragma unroll
            for (int d = 0; d < DK; d++) acc[d] += weight * values[k][d];
        }
    }
    if (!active) return;
    float inv = 1.0f / total;
    float* out = ctx + ((size_t)row * queries + query) * inner + head * DK;
    #pragma unroll
    for (int d = 0; d < DK; d++) out[d] = acc[d] * inv;
}

// Unscaled group attention at every token position: row r attends to the rows of its group
// (members[group_begin[r] .. group_end[r]]) whose key at that position is observed
// (key_mask (B, S), or every key when has_mask is 0). One pass with a running max.
// ctx is (B*S, I). Grid: (S, H); block: threads striding over the B query rows.
extern "C" __global__ void group_attention(const float* qkv, const float* key_mask, int has_mask, const int* members, const int* group_begin, const int* group_end, float* ctx, int rows, int tokens, int inner) {
    int t = blockIdx.x;
    int head = blockIdx.y;
    size_t stride = 3 * (size_t)inner;
    for (int r = threadIdx.x; r < rows; r += blockDim.x) {
        const float* q = qkv + ((size_t)r * tokens + t) * stride + head * DK;
        float acc[DK];
        #pragma unroll
        for (int d = 0; d < DK; d++) acc[d] = 0.0f;
        float running_max = NEG_INFINITY;
        float total = 0.0f;
        for (int m = group_begin[r]; m < group_end[r]; m++) {
            int key_row = members[m];
            const float* k = qkv + ((size_t)key_row * tokens + t) * stride + inner + head * DK;
            const float* v = k + inner;
            float score = 0.0f;
            #pragma unroll
            for (int d = 0; d < DK; d++) score += q[d] * k[d];
            float observed = has_mask ? key_mask[(size_t)key_row * tokens + t] : 1.0f;
            score += (1.0f - observed) * MASK_VALUE;
            if (score > running_max) {
                float correction = expf(running_max - score);
                total *= correction;
                #pragma unroll
                for (int d = 0; d < DK; d++) acc[d] *= correction;
                running_max = score;
            }
            float weight = expf(score - running_max);
            total += weight;
            #pragma unroll
            for (int d = 0; d < DK; d++) acc[d] += weight * v[d];
        }
        float inv = 1.0f / total;
        float* out = ctx + ((size_t)r * tokens + t) * inner + head * DK;
        #pragma unroll
        for (int d = 0; d < DK; d++) out[d] = acc[d] * inv;
    }
}
