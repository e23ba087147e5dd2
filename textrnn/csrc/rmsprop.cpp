// RMSprop's update (no momentum, not centered, no weight decay) in one pass over a float32 tensor.
//
// torch.optim.RMSprop makes five passes (mul_, addcmul_, sqrt, add_, addcdiv_) and allocates
// the sqrt's result; over the 27k x 32 embedding, whose gradient is dense, that is ~2.5 ms a
// batch on this CPU, and its sqrt is ~5x slower on zeros (the rows no batch has touched yet).
// Same formula, same order of operations; the last bit can differ where the compiler fuses a
// multiply-add differently from ATen's build.
#include <cmath>
#include <cstdint>

// keep = 1 - alpha, computed in double by the caller as torch does (1 - 0.99f in float is 1e-6 off).
extern "C" void textrnn_rmsprop_step(float* __restrict param, const float* __restrict grad,
                                     float* __restrict square_avg, int64_t n, float lr, float alpha, float keep,
                                     float eps) {
    for (int64_t i = 0; i < n; ++i) {
        const float g = grad[i];
        const float average = square_avg[i] * alpha + keep * g * g;
        square_avg[i] = average;
        param[i] += -lr * (g / (std::sqrt(average) + eps));
    }
}
