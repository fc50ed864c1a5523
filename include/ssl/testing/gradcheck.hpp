#pragma once
// Gradient checks against central finite differences, in double precision.
//
//   auto r = ssl::testing::gradcheck(layer, x);   // layer<double>, x: tensor<double>
//   CHECK_MESSAGE(r.ok, r.str());
//
// The scalar checked is L = sum(R .* layer(x)) for a fixed random R, so
// dL/dy = R and one backward gives every analytic gradient. Each checked
// entry v (of x and of every parameter) is compared with
// (L(v + eps) - L(v - eps)) / (2 eps). Large tensors can be sampled
// (max_checks_per_tensor) so whole backbones stay cheap to check.
// Entries that sit on a kink (left and right slopes differ even at a 100x
// smaller step) are skipped and counted in `skipped_kinks`.
#include <algorithm>
#include <cmath>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "../nn/parameter.hpp"

namespace ssl::testing {

struct gradcheck_options {
    double eps = 1e-6;                    ///< finite-difference step
    double atol = 1e-6;                   ///< absolute tolerance
    double rtol = 1e-4;                   ///< relative tolerance (of max(|analytic|, |numeric|))
    std::size_t max_checks_per_tensor = 0;  ///< 0: every entry; else a random sample of this many
    std::uint64_t seed = 1234;
    bool check_input = true;              ///< also check dL/dx
};

struct gradcheck_report {
    bool ok = true;
    std::size_t checked = 0;
    std::size_t failed = 0;
    std::size_t skipped_kinks = 0;  ///< entries at a kink of the function (not compared)
    double max_abs_error = 0;
    double max_rel_error = 0;
    std::string worst;  ///< description of the worst entry
    std::vector<std::string> failures;  ///< first few failing entries

    std::string str() const {
        std::ostringstream os;
        os << (ok ? "gradcheck passed" : "gradcheck FAILED") << ": " << checked << " entries, " << failed
           << " failed, " << skipped_kinks << " at kinks skipped, max abs error " << max_abs_error << ", max rel error " << max_rel_error;
        if (!worst.empty()) os << "; worst: " << worst;
        for (const auto& f : failures) os << "\n  " << f;
        return os.str();
    }
};

/// Compares `analytic[i]` with the central difference of `loss` in values[i]
/// for the chosen indices. `loss` must read `values` (which this perturbs
/// and restores).
inline void check_entries(gradcheck_report& rep, const std::string& what, double* values, const double* analytic,
                          std::size_t n, const std::function<double()>& loss, const gradcheck_options& o) {
    std::vector<std::size_t> idx;
    if (o.max_checks_per_tensor == 0 || o.max_checks_per_tensor >= n) {
        idx.resize(n);
        for (std::size_t i = 0; i < n; ++i) idx[i] = i;
    } else {
        philox g(o.seed, stream_id(n, what.size()));
        for (std::size_t k = 0; k < o.max_checks_per_tensor; ++k) idx.push_back(g.below(n));
    }
    const double l0 = loss();
    for (std::size_t i : idx) {
        const double v = values[i];
        const double a = analytic[i];
        double num = 0, err = 0, scale = 0;
        bool bad = true, kink = false;
        // At a kink of the function (relu at 0, a max-pool tie) the left and
        // right slopes differ and no central difference is right. Such an
        // entry is retried with a 100x smaller step, then skipped (and
        // counted) if it is still at a kink. A wrong backward on a smooth
        // part has equal left and right slopes and fails.
        for (double eps = o.eps; eps >= o.eps * 1e-2; eps *= 1e-2) {
            values[i] = v + eps;
            const double lp = loss();
            values[i] = v - eps;
            const double lm = loss();
            values[i] = v;
            num = (lp - lm) / (2 * eps);
            const double right = (lp - l0) / eps, left = (l0 - lm) / eps;
            err = std::abs(a - num);
            scale = std::max(std::abs(a), std::abs(num));
            bad = !(err <= o.atol + o.rtol * scale);  // NaN fails
            // At a kink the central difference is the mean of the two one-sided
            // slopes, so its error is about |right - left| / 2; on a smooth
            // part |right - left| ~ eps * f'' is far below a real error.
            kink = std::abs(right - left) >= err;
            if (!bad || !kink) break;
        }
        if (bad && kink) {
            ++rep.skipped_kinks;
            continue;
        }
        const double rel = scale > 10 * o.atol ? err / scale : 0.0;  // relative error of non-tiny entries
        ++rep.checked;
        std::ostringstream d;
        d << what << "[" << i << "]: analytic " << a << ", numeric " << num;
        if (err > rep.max_abs_error || bad) {
            if (err > rep.max_abs_error) rep.max_abs_error = err;
            rep.worst = d.str();
        }
        rep.max_rel_error = std::max(rep.max_rel_error, rel);
        if (bad) {
            rep.ok = false;
            ++rep.failed;
            if (rep.failures.size() < 8) rep.failures.push_back(d.str());
        }
    }
}

/// A fixed random tensor in [-1, 1) (for inputs and upstream gradients).
inline tensor<double> random_tensor(shape_t s, std::uint64_t seed, double lo = -1.0, double hi = 1.0) {
    tensor<double> t(s);
    philox g(seed, 77);
    for (auto& v : t) v = g.uniform(lo, hi);
    return t;
}

/// Checks every backward of a layer / block / backbone against finite
/// differences (parameters and, unless disabled, the input).
template <class M>
gradcheck_report gradcheck(M& module, const tensor<double>& x_in, const gradcheck_options& o = {}) {
    gradcheck_report rep;
    tensor<double> x = x_in.clone();
    auto first = module.forward(x);
    const tensor<double> R = random_tensor(first.out.shape(), o.seed + 1);
    auto loss = [&]() {
        auto r = module.forward(x);
        double s = 0;
        for (std::size_t i = 0; i < R.numel(); ++i) s += R[i] * r.out[i];
        return s;
    };
    // analytic
    module.for_each_parameter([](const std::string&, parameter<double>& p) { p.zero_grad(); }, "");
    auto fr = module.forward(x);
    tensor<double> dx = module.backward(fr.cache, R);
    if (o.check_input) {
        require<shape_error>(dx.shape() == x.shape(), "gradcheck: backward returned shape ", dx.shape().str(),
                             " for input ", x.shape().str());
        check_entries(rep, "input", x.data(), dx.data(), x.numel(), loss, o);
    }
    std::vector<std::pair<std::string, parameter<double>*>> params;
    module.for_each_parameter([&](const std::string& n, parameter<double>& p) { params.emplace_back(n, &p); }, "");
    for (auto& [name, p] : params) {
        tensor<double> g = p->grad.clone();
        check_entries(rep, name, p->value.data(), g.data(), p->value.numel(), loss, o);
    }
    return rep;
}

}  // namespace ssl::testing
