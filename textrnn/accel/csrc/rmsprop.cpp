// RMSprop's update (no momentum, not centered, no weight decay) in one pass over a float32 tensor.
//
// torch.optim.RMSprop makes five passes over each tensor (mul_, addcmul_, sqrt, add_, addcdiv_)
// and allocates the sqrt's result; over the embedding, whose gradient is dense, that dominates
// the step. This is the same formula in the same order of operations as ATen's CPU kernels:
//   square_avg = square_avg * alpha + (keep * g) * g        (mul_, then addcmul_)
//   param      = param + (-lr * g) / (sqrt(square_avg) + eps)   (sqrt, add_, then addcdiv_)
// each operation rounded on its own (-ffp-contract=off), so it gives the same bytes on any CPU.
#include <cmath>
#include <cstdint>

// keep = 1 - alpha, computed in double by the caller as torch does (1 - 0.99f in float is 1e-6 off).
extern "C" void textrnn_rmsprop_step(float* __restrict param, const float* __restrict grad,
                                     float* __restrict square_avg, int64_t n, float lr, float alpha, float keep,
                                     float eps) {
    const float step = -lr;
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i];
        const float average = square_avg[i] * alpha + keep * g * g;
        square_avg[i] = average;
        param[i] = param[i] + step * g / (std::sqrt(average) + eps);
    }
}
