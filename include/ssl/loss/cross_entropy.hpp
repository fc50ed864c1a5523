#pragma once
// Softmax cross entropy over logits (N, K) with integer labels, averaged over
// the batch, with optional label smoothing (as torch.nn.CrossEntropyLoss):
//   L = -1/N sum_i sum_k q_ik log softmax(z_i)_k,
//   q_ik = (1 - s) [k == y_i] + s / K.
// value() and gradient() share one pass: dL/dz = (softmax(z) - q) / N.
#include <cmath>
#include <cstdint>
#include <span>

#include "../core/tensor.hpp"
#include "../ops/rows.hpp"

namespace ssl::loss {

struct cross_entropy_config {
    double label_smoothing = 0;
};

template <class T = float>
struct loss_result {
    double value = 0;       ///< mean loss over the batch
    tensor<T> grad;         ///< dL/dlogits, same shape as the logits
    std::size_t correct = 0;  ///< samples whose arg-max logit is the label
};

template <class T = float>
class cross_entropy {
public:
    using value_type = T;
    explicit cross_entropy(const cross_entropy_config& c = {}) : cfg_(c) {
        require(c.label_smoothing >= 0 && c.label_smoothing < 1, "cross_entropy: label_smoothing must be in [0, 1), got ",
                c.label_smoothing);
    }
    const cross_entropy_config& config() const noexcept { return cfg_; }

    /// logits (N, K), labels N integers in [0, K).
    loss_result<T> operator()(const tensor<T>& logits, std::span<const std::int64_t> labels) const {
        check_rank(logits, 2, "cross_entropy", "(N, K) logits");
        const std::size_t n = logits.dim(0), k = logits.dim(1);
        require<shape_error>(labels.size() == n, "cross_entropy: ", labels.size(), " labels for logits of shape ",
                             logits.shape().str());
        require<shape_error>(n > 0 && k > 0, "cross_entropy: empty logits ", logits.shape().str());
        loss_result<T> r;
        r.grad = tensor<T>(logits.shape());
        const double s = cfg_.label_smoothing, off = s / static_cast<double>(k);
        double total = 0;
        for (std::size_t i = 0; i < n; ++i) {
            const std::int64_t y = labels[i];
            require(y >= 0 && static_cast<std::size_t>(y) < k, "cross_entropy: label ", y, " of sample ", i,
                    " is outside [0, ", k, ")");
            const T* z = logits.data() + i * k;
            T* g = r.grad.data() + i * k;
            std::size_t arg = 0;
            for (std::size_t j = 1; j < k; ++j)
                if (z[j] > z[arg]) arg = j;
            r.correct += arg == static_cast<std::size_t>(y);
            const double lse = ops::row_logsumexp(z, k);
            for (std::size_t j = 0; j < k; ++j) {
                const double q = off + (j == static_cast<std::size_t>(y) ? 1 - s : 0.0);
                const double logp = z[j] - lse;
                total -= q * logp;
                g[j] = static_cast<T>((std::exp(logp) - q) / static_cast<double>(n));
            }
        }
        require(std::isfinite(total), "cross_entropy: the loss is not finite (logits contain NaN or Inf)");
        r.value = total / static_cast<double>(n);
        return r;
    }

private:
    cross_entropy_config cfg_;
};

}  // namespace ssl::loss
