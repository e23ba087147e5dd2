// A fused tanh RNN for the CPU: the whole recurrence h_t = tanh(p_t + U h_{t-1}) in one call,
// forward and backward (BPTT), float32, batch-first, hidden size a multiple of 16 up to 256; its
// input projection p_t = W x_t + b; and a forward-only variant for scoring that reads p_t from a
// table (one row per vocabulary id) by token id and keeps each row's state at its own last step.
//
// PyTorch's own CPU loop pays more in operator overhead per time step than the step's arithmetic
// costs at the default sizes (embedding 32, hidden 64; docs/decisions.md). Here each block of R
// batch rows runs all its time steps, a few output vectors at a time, with the accumulators in
// vector registers.
//
// The same bytes on every CPU: every output element is computed by the same sequence of float
// operations, each rounded on its own, whatever the vector width (8 floats with AVX, 4 with
// SSE or NEON) and the blocking. That needs -ffp-contract=off (no a * b + c fused into one
// rounding where the ISA has FMA), which textrnn/accel/kernel.py always passes.
//
// Plain C ABI (no torch or Python headers): it compiles in seconds with g++ and is called
// through ctypes on tensors' data pointers by textrnn/accel/kernel.py.
#include <cstdint>
#include <vector>

namespace {

// The widest vector the build's ISA level has: 8 floats with AVX (x86-64-v3), else 4 (SSE2, NEON).
#if defined(__AVX__)
constexpr int W = 8;
#else
constexpr int W = 4;
#endif
typedef float vec __attribute__((vector_size(4 * W)));
typedef float vec_u __attribute__((vector_size(4 * W), aligned(4)));  // for unaligned loads and stores

inline vec load(const float* p) { return *reinterpret_cast<const vec_u*>(p); }
inline void store(float* p, vec x) { *reinterpret_cast<vec_u*>(p) = x; }
// A broadcast: exact for every x, -0.0 included. Written as one initializer, it compiles to one
// vbroadcastss; an element-wise loop compiled to a chain of inserts that held the vector ports.
inline vec splat(float x) {
#if defined(__AVX__)
    return vec{x, x, x, x, x, x, x, x};
#else
    return vec{x, x, x, x};
#endif
}

// tanh as Eigen's rational approximation (Eigen 3.4 generic_fast_tanh_float): odd degree-13
// numerator over even degree-6 denominator on [-7.9988, 7.9988], clamped outside.
// Max abs error vs float64 tanh: 3.4e-7 (tests/test_accel.py checks 5e-7).
inline vec tanh_vec(vec a) {
    const float clamp = 7.99881172180175781f;
    vec x = a < splat(clamp) ? a : splat(clamp);
    x = x > splat(-clamp) ? x : splat(-clamp);
    const vec x2 = x * x;
    vec p = x2 * -2.76076847742355e-16f + 2.00018790482477e-13f;
    p = p * x2 + -8.60467152213735e-11f;
    p = p * x2 + 5.12229709037114e-08f;
    p = p * x2 + 1.48572235717979e-05f;
    p = p * x2 + 6.37261928875436e-04f;
    p = p * x2 + 4.89352455891786e-03f;
    p = p * x;
    vec q = x2 * 1.19825839466702e-06f + 1.18534705686654e-04f;
    q = q * x2 + 2.26843463243900e-03f;
    q = q * x2 + 4.89352518554385e-03f;
    const vec abs_a = a < splat(0.0f) ? -a : a;
    return abs_a < splat(0.0004f) ? a : p / q;
}

// Out of line on purpose: inlined, its constants would stay in vector registers through the
// whole time loop and push the accumulators of the matrix-vector product out to memory.
__attribute__((noinline)) void tanh_in_place(float* x, int64_t n) {
    for (int64_t i = 0; i < n; i += W) store(x + i, tanh_vec(load(x + i)));
}

// For rows r < R and the C * W outputs j0 <= j < j0 + C * W:
//   out[r][j] = init[r][j] + s[r][0] m[0][j] + s[r][1] m[1][j] + ... + s[r][K-1] m[K-1][j]
// summed left to right, each product and sum rounded on its own; init is 0 when ZeroInit.
// m is K x H, row-major; R x C accumulators stay in registers through the loop over k.
template <int R, int C, bool ZeroInit>
inline void multiply_add(const float* const init[R], const float* const s[R], const float* m, float* const out[R],
                         int64_t K, int64_t H, int64_t j0) {
    vec acc[R][C];
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) acc[r][c] = ZeroInit ? splat(0.0f) : load(init[r] + j0 + c * W);
    for (int64_t k = 0; k < K; ++k) {
        vec column[C];
        for (int c = 0; c < C; ++c) column[c] = load(m + k * H + j0 + c * W);
        for (int r = 0; r < R; ++r) {
            const vec sk = splat(s[r][k]);
            for (int c = 0; c < C; ++c) acc[r][c] += sk * column[c];
        }
    }
    for (int r = 0; r < R; ++r)
        for (int c = 0; c < C; ++c) store(out[r] + j0 + c * W, acc[r][c]);
}

// states[b, t] = tanh(inputs[b, t] + U states[b, t - 1]) for rows b0 .. b0 + R - 1, every t.
// ut is U transposed (ut[k * H + j] = U[j, k]), so that column k of U is one contiguous row.
template <int R, int C>
void forward_rows(const float* inputs, const float* h0, const float* ut, float* states, int64_t T, int64_t H,
                  int64_t b0) {
    const float* previous[R];
    const float* in[R];
    float* out[R];
    for (int r = 0; r < R; ++r) previous[r] = h0 + (b0 + r) * H;
    for (int64_t t = 0; t < T; ++t) {
        for (int r = 0; r < R; ++r) {
            in[r] = inputs + ((b0 + r) * T + t) * H;
            out[r] = states + ((b0 + r) * T + t) * H;
        }
        for (int64_t j0 = 0; j0 < H; j0 += C * W) multiply_add<R, C, false>(in, previous, ut, out, H, H, j0);
        for (int r = 0; r < R; ++r) {
            tanh_in_place(out[r], H);
            previous[r] = out[r];
        }
    }
}

// Backpropagation through time for rows b0 .. b0 + R - 1: given dL/dstates (every step's own
// gradient), writes dL/dinputs (= dL/dz_t, z_t the pre-activation) and dL/dh0.
template <int R, int C>
void backward_rows(const float* grad_states, const float* states, const float* u, float* grad_inputs,
                   float* grad_h0, int64_t T, int64_t H, int64_t b0) {
    std::vector<float> carried(R * H, 0.0f);  // dL/dh_t from the steps after t
    const float* dz[R];
    float* carry[R];
    for (int r = 0; r < R; ++r) carry[r] = carried.data() + r * H;
    for (int64_t t = T - 1; t >= 0; --t) {
        for (int r = 0; r < R; ++r) {
            const int64_t at = ((b0 + r) * T + t) * H;
            for (int64_t j = 0; j < H; j += W) {
                const vec h = load(states + at + j);
                const vec g = load(carry[r] + j) + load(grad_states + at + j);
                store(grad_inputs + at + j, g * (1.0f - h * h));
            }
            dz[r] = grad_inputs + at;
        }
        // dL/dh_{t-1} = U^T dz_t: row j of U, scaled by dz_t[j], summed over j.
        for (int64_t k0 = 0; k0 < H; k0 += C * W) multiply_add<R, C, true>(nullptr, dz, u, carry, H, H, k0);
    }
    for (int r = 0; r < R; ++r)
        for (int64_t j = 0; j < H; ++j) grad_h0[(b0 + r) * H + j] = carry[r][j];
}

// Where row b's input at step t is, for scoring: a row of ``table`` (the input projection of every
// vocabulary id) picked by the row's tokens ids[starts[b] .. starts[b] + lengths[b]), read first to
// last, or last to first when reversed. A step past the row's length reads table row 0: a block
// runs to its longest row, and a shorter row's extra states are never copied out.
struct TokenInputs {
    const float* table;
    const int32_t* ids;
    const int64_t* starts;
    const int64_t* lengths;
    int64_t H;
    bool reverse;

    const float* at(int64_t b, int64_t t) const {
        const int64_t n = lengths[b];
        if (t >= n) return table;
        return table + static_cast<int64_t>(ids[starts[b] + (reverse ? n - 1 - t : t)]) * H;
    }
};

// The state after each row's own last step, for rows b0 .. b0 + R - 1: last[b] = states[b, n_b - 1]
// of forward_rows over the rows' inputs from the zero state (n_b = lengths[b]; zeros where n_b = 0),
// by the same operations in the same order, without keeping the other steps' states. scratch holds
// 2 * R * H floats, zeros H floats of 0.
template <int R, int C>
void last_rows(const TokenInputs& inputs, const float* zeros, const float* ut, float* last, float* scratch,
               int64_t H, int64_t b0) {
    const float* previous[R];
    const float* in[R];
    float* out[R];
    int64_t steps = 0;
    for (int r = 0; r < R; ++r) {
        previous[r] = zeros;
        const int64_t n = inputs.lengths[b0 + r];
        if (n > steps) steps = n;
        if (n == 0)
            for (int64_t j = 0; j < H; ++j) last[(b0 + r) * H + j] = 0.0f;
    }
    for (int64_t t = 0; t < steps; ++t) {
        for (int r = 0; r < R; ++r) {
            in[r] = inputs.at(b0 + r, t);
            out[r] = scratch + ((t & 1) * R + r) * H;  // step t - 1's state stays in the other half
        }
        for (int64_t j0 = 0; j0 < H; j0 += C * W) multiply_add<R, C, false>(in, previous, ut, out, H, H, j0);
        for (int r = 0; r < R; ++r) {
            tanh_in_place(out[r], H);
            previous[r] = out[r];
            if (t == inputs.lengths[b0 + r] - 1)
                for (int64_t j = 0; j < H; ++j) last[(b0 + r) * H + j] = out[r][j];
        }
    }
}

// out[n] = x[n] W^T + bias for rows n0 .. n0 + R - 1: each output the products x[n][k] W[j][k] summed
// left to right from k = 0, then the bias added (wt is W transposed, K x H).
template <int R, int C>
void project_rows(const float* x, const float* wt, const float* bias, float* out, int64_t K, int64_t H, int64_t n0) {
    const float* s[R];
    float* o[R];
    for (int r = 0; r < R; ++r) {
        s[r] = x + (n0 + r) * K;
        o[r] = out + (n0 + r) * H;
    }
    for (int64_t j0 = 0; j0 < H; j0 += C * W) multiply_add<R, C, true>(nullptr, s, wt, o, K, H, j0);
    for (int r = 0; r < R; ++r)
        for (int64_t j = 0; j < H; j += W) store(o[r] + j, load(o[r] + j) + load(bias + j));
}

// Blocks of 8 accumulators: 2 rows x 4 vectors, or 4 rows x 2 vectors where 4 vectors do not
// divide a row. The blocking only changes speed: each output's operations stay the same.
template <typename Run2x4, typename Run4x2>
void by_block(int64_t H, Run2x4 run2x4, Run4x2 run4x2) {
    if (H % (4 * W) == 0)
        run2x4();
    else
        run4x2();
}

template <int R, int C>
void forward_all(const float* inputs, const float* h0, const float* ut, float* states, int64_t B, int64_t T,
                 int64_t H) {
    int64_t b = 0;
    for (; b + R <= B; b += R) forward_rows<R, C>(inputs, h0, ut, states, T, H, b);
    for (; b < B; ++b) forward_rows<1, C>(inputs, h0, ut, states, T, H, b);
}

template <int R, int C>
void backward_all(const float* grad_states, const float* states, const float* u, float* grad_inputs,
                  float* grad_h0, int64_t B, int64_t T, int64_t H) {
    int64_t b = 0;
    for (; b + R <= B; b += R) backward_rows<R, C>(grad_states, states, u, grad_inputs, grad_h0, T, H, b);
    for (; b < B; ++b) backward_rows<1, C>(grad_states, states, u, grad_inputs, grad_h0, T, H, b);
}

template <int R, int C>
void last_all(const TokenInputs& inputs, const float* ut, float* last, int64_t B, int64_t H) {
    std::vector<float> scratch(2 * R * H), zeros(H, 0.0f);
    int64_t b = 0;
    for (; b + R <= B; b += R) last_rows<R, C>(inputs, zeros.data(), ut, last, scratch.data(), H, b);
    for (; b < B; ++b) last_rows<1, C>(inputs, zeros.data(), ut, last, scratch.data(), H, b);
}

template <int R, int C>
void project_all(const float* x, const float* wt, const float* bias, float* out, int64_t N, int64_t K, int64_t H) {
    int64_t n = 0;
    for (; n + R <= N; n += R) project_rows<R, C>(x, wt, bias, out, K, H, n);
    for (; n < N; ++n) project_rows<1, C>(x, wt, bias, out, K, H, n);
}

constexpr int64_t kMaxHidden = 256;

bool supported(int64_t H) { return H > 0 && H % 16 == 0 && H <= kMaxHidden; }

// m [rows, columns] transposed (mt[k * rows + j] = m[j, k]), so that column k of m is one contiguous row.
std::vector<float> transposed(const float* m, int64_t rows, int64_t columns) {
    std::vector<float> mt(rows * columns);
    for (int64_t j = 0; j < rows; ++j)
        for (int64_t k = 0; k < columns; ++k) mt[k * rows + j] = m[j * columns + k];
    return mt;
}

}  // namespace

extern "C" {

// The largest hidden size the kernel takes (it also needs hidden % 16 == 0).
int textrnn_max_hidden() { return static_cast<int>(kMaxHidden); }

// inputs [B, T, H] (x_t W^T + both biases), h0 [B, H], u [H, H] (U.weight) -> states [B, T, H].
// All float32, contiguous. Returns 0, or -1 for an unsupported H.
int textrnn_rnn_tanh_forward(const float* inputs, const float* h0, const float* u, float* states,
                             int64_t B, int64_t T, int64_t H) {
    if (!supported(H)) return -1;
    const std::vector<float> ut = transposed(u, H, H);
    by_block(H, [&] { forward_all<2, 4>(inputs, h0, ut.data(), states, B, T, H); },
             [&] { forward_all<4, 2>(inputs, h0, ut.data(), states, B, T, H); });
    return 0;
}

// x [N, K], w [H, K] (W.weight), bias [H] -> out [N, H] = x w^T + bias: each output the products
// x[n][k] w[j][k] summed left to right from k = 0, each rounded on its own, then the bias added. A
// row's result depends on nothing but the row (not on N, the blocking or the thread that runs it):
// the input projection of the rnn cell, in training and, one row per vocabulary id, in scoring.
// All float32, contiguous. Returns 0, or -1 for an unsupported H.
int textrnn_project(const float* x, const float* w, const float* bias, float* out, int64_t N, int64_t K, int64_t H) {
    if (!supported(H) || K < 0) return -1;
    const std::vector<float> wt = transposed(w, H, K);
    by_block(H, [&] { project_all<2, 4>(x, wt.data(), bias, out, N, K, H); },
             [&] { project_all<4, 2>(x, wt.data(), bias, out, N, K, H); });
    return 0;
}

// table [V, H] (textrnn_project of every vocabulary id's embedding), ids [n_ids] int32, starts and
// lengths [B] int64, u [H, H] -> last [B, H]: the state after row b's tokens ids[starts[b] ..
// starts[b] + lengths[b]) (read last to first when reverse), from the zero state; bit for bit
// textrnn_rnn_tanh_forward's states[b, lengths[b] - 1] over the inputs table[ids] (zeros for a
// length of 0). Returns 0, -1 for an unsupported H, -2 for a row outside ids, -3 for an id outside 0 .. V - 1.
int textrnn_rnn_tanh_last(const float* table, int64_t V, const int32_t* ids, int64_t n_ids, const int64_t* starts,
                          const int64_t* lengths, int reverse, const float* u, float* last, int64_t B, int64_t H) {
    if (!supported(H)) return -1;
    for (int64_t b = 0; b < B; ++b) {
        if (starts[b] < 0 || lengths[b] < 0 || starts[b] > n_ids - lengths[b]) return -2;
        for (int64_t i = starts[b]; i < starts[b] + lengths[b]; ++i)
            if (ids[i] < 0 || ids[i] >= V) return -3;
    }
    const TokenInputs inputs{table, ids, starts, lengths, H, reverse != 0};
    const std::vector<float> ut = transposed(u, H, H);
    by_block(H, [&] { last_all<2, 4>(inputs, ut.data(), last, B, H); },
             [&] { last_all<4, 2>(inputs, ut.data(), last, B, H); });
    return 0;
}

// grad_states, states [B, T, H], u [H, H] -> grad_inputs [B, T, H], grad_h0 [B, H]. Returns 0 or -1.
int textrnn_rnn_tanh_backward(const float* grad_states, const float* states, const float* u,
                              float* grad_inputs, float* grad_h0, int64_t B, int64_t T, int64_t H) {
    if (!supported(H)) return -1;
    by_block(H, [&] { backward_all<2, 4>(grad_states, states, u, grad_inputs, grad_h0, B, T, H); },
             [&] { backward_all<4, 2>(grad_states, states, u, grad_inputs, grad_h0, B, T, H); });
    return 0;
}

}  // extern "C"
