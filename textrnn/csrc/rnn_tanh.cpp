// A fused tanh RNN for the CPU: the whole recurrence h_t = tanh(p_t + U h_{t-1}) in one call,
// forward and backward (BPTT), float32, batch-first, hidden size a multiple of 16 up to 256.
//
// PyTorch's own CPU loop pays ~80-100 us of operator overhead per time step (forward and
// backward) for ~5 us of arithmetic at batch 32, hidden 64. Here each block of R batch rows runs
// all its time steps with its accumulators in vector registers and U in L1.
//
// Plain C ABI (no torch or Python headers): it compiles in a few seconds with g++ and is
// called through ctypes on tensors' data pointers by textrnn/fused_cpu.py.
#include <cstdint>
#include <cstring>
#include <vector>

namespace {

// 16 floats: one AVX-512 register, two AVX2 registers (GCC splits it), four SSE registers.
typedef float v16 __attribute__((vector_size(64)));
typedef float v16u __attribute__((vector_size(64), aligned(4)));  // for unaligned loads and stores

inline v16 load(const float* p) { return *reinterpret_cast<const v16u*>(p); }
inline void store(float* p, v16 x) { *reinterpret_cast<v16u*>(p) = x; }
inline v16 splat(float x) { return v16{} + x; }

// tanh as Eigen's rational approximation (Eigen 3.4 generic_fast_tanh_float): odd degree-13
// numerator over even degree-6 denominator on [-7.9988, 7.9988], clamped outside.
// Measured max abs error vs float64 tanh: 3.4e-7 (float32 rounding of std::tanh: 6e-8).
inline v16 tanh16(v16 a) {
    const float clamp = 7.99881172180175781f;
    v16 x = a < splat(clamp) ? a : splat(clamp);
    x = x > splat(-clamp) ? x : splat(-clamp);
    const v16 x2 = x * x;
    v16 p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    v16 q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const v16 abs_a = a < splat(0.0f) ? -a : a;
    return abs_a < splat(0.0004f) ? a : p / q;
}

// Out of line on purpose: inlined, its 15 constants would stay in vector registers through the
// whole time loop and push the matrix-vector product's operands out to memory (~1.5x slower).
__attribute__((noinline)) void tanh_in_place(float* x, int nv) {
    for (int v = 0; v < nv; ++v) store(x + 16 * v, tanh16(load(x + 16 * v)));
}

// Rows per block: as many accumulators as the vector registers hold (32 zmm / 16 ymm).
constexpr int rows_per_block(int nv) {
#if defined(__AVX512F__)
    return nv >= 16 ? 1 : nv >= 8 ? 2 : nv >= 4 ? 4 : 8;
#else
    return nv >= 4 ? 1 : nv >= 2 ? 2 : 4;
#endif
}

// states[b, t] = tanh(inputs[b, t] + U states[b, t - 1]) for rows b0 .. b0 + R - 1.
// ut is U transposed (ut[k * H + j] = U[j, k]), so that column k of U is one contiguous row.
template <int NV, int R>
void forward_block(const float* inputs, const float* h0, const float* ut, float* states, int64_t T, int64_t b0) {
    constexpr int H = NV * 16;
    const float* previous[R];
    for (int r = 0; r < R; ++r) previous[r] = h0 + (b0 + r) * H;
    for (int64_t t = 0; t < T; ++t) {
        v16 acc[R][NV];
        for (int r = 0; r < R; ++r)
            for (int v = 0; v < NV; ++v) acc[r][v] = load(inputs + ((b0 + r) * T + t) * H + 16 * v);
        for (int k = 0; k < H; ++k) {
            v16 column[NV];
            for (int v = 0; v < NV; ++v) column[v] = load(ut + k * H + 16 * v);
            for (int r = 0; r < R; ++r) {
                const float h = previous[r][k];
                for (int v = 0; v < NV; ++v) acc[r][v] += h * column[v];
            }
        }
        for (int r = 0; r < R; ++r) {
            float* out = states + ((b0 + r) * T + t) * H;
            for (int v = 0; v < NV; ++v) store(out + 16 * v, acc[r][v]);
            tanh_in_place(out, NV);
            previous[r] = out;
        }
    }
}

// Backpropagation through time for rows b0 .. b0 + R - 1: given dL/dstates (every step's own
// gradient), writes dL/dinputs (= dL/dz_t, z_t the pre-activation) and dL/dh0.
template <int NV, int R>
void backward_block(const float* grad_states, const float* states, const float* u, float* grad_inputs,
                    float* grad_h0, int64_t T, int64_t b0) {
    constexpr int H = NV * 16;
    v16 grad[R][NV];  // dL/dh_t, carried backwards through time
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) grad[r][v] = splat(0.0f);
    for (int64_t t = T - 1; t >= 0; --t) {
        const float* dz[R];
        for (int r = 0; r < R; ++r) {
            const int64_t at = ((b0 + r) * T + t) * H;
            float* out = grad_inputs + at;
            for (int v = 0; v < NV; ++v) {
                const v16 h = load(states + at + 16 * v);
                const v16 g = grad[r][v] + load(grad_states + at + 16 * v);
                store(out + 16 * v, g * (1.0f - h * h));
                grad[r][v] = splat(0.0f);
            }
            dz[r] = out;
        }
        // dL/dh_{t-1} = U^T dz_t: row j of U, scaled by dz_t[j], summed over j.
        for (int j = 0; j < H; ++j) {
            v16 row[NV];
            for (int v = 0; v < NV; ++v) row[v] = load(u + j * H + 16 * v);
            for (int r = 0; r < R; ++r) {
                const float d = dz[r][j];
                for (int v = 0; v < NV; ++v) grad[r][v] += d * row[v];
            }
        }
    }
    for (int r = 0; r < R; ++r)
        for (int v = 0; v < NV; ++v) store(grad_h0 + (b0 + r) * H + 16 * v, grad[r][v]);
}

template <int NV>
void forward_all(const float* inputs, const float* h0, const float* u, float* states, int64_t B, int64_t T) {
    constexpr int H = NV * 16, R = rows_per_block(NV);
    std::vector<float> ut(H * H);
    for (int j = 0; j < H; ++j)
        for (int k = 0; k < H; ++k) ut[k * H + j] = u[j * H + k];
    int64_t b = 0;
    for (; b + R <= B; b += R) forward_block<NV, R>(inputs, h0, ut.data(), states, T, b);
    for (; b < B; ++b) forward_block<NV, 1>(inputs, h0, ut.data(), states, T, b);
}

template <int NV>
void backward_all(const float* grad_states, const float* states, const float* u, float* grad_inputs,
                  float* grad_h0, int64_t B, int64_t T) {
    constexpr int R = rows_per_block(NV);
    int64_t b = 0;
    for (; b + R <= B; b += R) backward_block<NV, R>(grad_states, states, u, grad_inputs, grad_h0, T, b);
    for (; b < B; ++b) backward_block<NV, 1>(grad_states, states, u, grad_inputs, grad_h0, T, b);
}

#define TEXTRNN_FOR_EACH_NV(CASE) \
    CASE(1) CASE(2) CASE(3) CASE(4) CASE(5) CASE(6) CASE(7) CASE(8) \
    CASE(9) CASE(10) CASE(11) CASE(12) CASE(13) CASE(14) CASE(15) CASE(16)

}  // namespace

extern "C" {

// The largest hidden size the kernel takes (it also needs hidden % 16 == 0).
int textrnn_max_hidden() { return 256; }

// inputs [B, T, H] (x_t W^T + both biases), h0 [B, H], u [H, H] (U.weight) -> states [B, T, H].
// All float32, contiguous. Returns 0, or -1 for an unsupported H.
int textrnn_rnn_tanh_forward(const float* inputs, const float* h0, const float* u, float* states,
                             int64_t B, int64_t T, int64_t H) {
    if (H % 16 != 0) return -1;
    switch (H / 16) {
#define CASE(NV) case NV: forward_all<NV>(inputs, h0, u, states, B, T); return 0;
        TEXTRNN_FOR_EACH_NV(CASE)
#undef CASE
        default: return -1;
    }
}

// grad_states, states [B, T, H], u [H, H] -> grad_inputs [B, T, H], grad_h0 [B, H]. Returns 0 or -1.
int textrnn_rnn_tanh_backward(const float* grad_states, const float* states, const float* u,
                              float* grad_inputs, float* grad_h0, int64_t B, int64_t T, int64_t H) {
    if (H % 16 != 0) return -1;
    switch (H / 16) {
#define CASE(NV) case NV: backward_all<NV>(grad_states, states, u, grad_inputs, grad_h0, B, T); return 0;
        TEXTRNN_FOR_EACH_NV(CASE)
#undef CASE
        default: return -1;
    }
}

}  // extern "C"
