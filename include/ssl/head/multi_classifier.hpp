#pragma once
// Classifier heads of the clustering methods (ssl::head_policy).
//
//   multi_classifier         H linear classifiers of K classes each on the
//                            backbone features, output (B, H*K) with head h in
//                            columns [h*K, (h+1)*K). SeLa (Asano, Rupprecht,
//                            Vedaldi, "Self-labelling via simultaneous
//                            clustering and representation learning", ICLR
//                            2020, sec. 3.4 "multiple heads"): several
//                            clusterings of the same data, one per head, each
//                            with its own Sinkhorn-Knopp labels. H = 1 is
//                            DeepCluster's k-way classifier.
//   hierarchical_classifier  DeeperCluster (Caron, Bojanowski, Mairal, Joulin,
//                            "Unsupervised Pre-Training of Image Features on
//                            Non-Curated Data", ICCV 2019, sec. 3.2): a
//                            super-class classifier with S outputs and one
//                            k2-way sub-class classifier per super-class.
//                            Output (B, S + S*k2): columns [0, S) are the
//                            super-class logits, columns S + [s*k2, (s+1)*k2)
//                            the sub-class logits of super-class s.
//
// Choices. H classifiers on the same input are exactly one linear layer with
// H*K outputs (same PyTorch default initialisation, fan-in = in_features), so
// multi_classifier is one nn::linear: one GEMM instead of H, and its
// parameters are two tensors ("weight" (H*K, in), "bias" (H*K)). The
// hierarchical head computes every sub-classifier for every sample (the loss
// reads only the block of the sample's super-class; the other blocks get a
// zero gradient): with S*k2 in the low thousands this costs one GEMM of that
// width, far simpler than the reference's one-process-group-per-super-class.
// Both heads keep their parameters as direct members, so re-initialising a
// head in place (head = Head(config, in, seed), what DeepCluster does after
// every reassignment) leaves every parameter at its address and an attached
// optimizer keeps working.
#include <string>

#include "../nn/linear.hpp"

namespace ssl::head {

struct multi_classifier_config {
    std::size_t heads = 1;      ///< H: independent classifiers (SeLa's best ImageNet model: 10)
    std::size_t classes = 100;  ///< K: classes per classifier
};

/// H linear classifiers of K classes on the same features: (B, in) -> (B, H*K).
template <class T = float>
class multi_classifier {
public:
    using value_type = T;
    using config_type = multi_classifier_config;
    using target_type = multi_classifier;
    using cache_type = typename nn::linear<T>::cache_type;

    multi_classifier() = default;
    multi_classifier(const config_type& c, std::size_t in_features, std::uint64_t seed = 0) : cfg_(c) {
        require(c.heads >= 1, "head::multi_classifier: needs at least 1 head, got ", c.heads);
        require(c.classes >= 2, "head::multi_classifier: needs at least 2 classes per head, got ", c.classes);
        require(in_features > 0, "head::multi_classifier: in_features must be positive");
        fc_ = nn::linear<T>({in_features, c.heads * c.classes, true}, seed);
    }
    const config_type& config() const noexcept { return cfg_; }
    std::size_t heads() const noexcept { return cfg_.heads; }
    std::size_t classes() const noexcept { return cfg_.classes; }
    std::size_t out_features() const noexcept { return cfg_.heads * cfg_.classes; }

    forward_result<T, cache_type> forward(const tensor<T>& x) { return fc_.forward(x); }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) { return fc_.backward(c, dy); }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        fc_.for_each_parameter(f, p);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) { fc_.train(on); }
    bool training() const noexcept { return fc_.training(); }
    multi_classifier& target_part() noexcept { return *this; }
    nn::linear<T>& linear() noexcept { return fc_; }

private:
    config_type cfg_{};
    nn::linear<T> fc_;
};

struct hierarchical_classifier_config {
    std::size_t super_classes = 16;  ///< S (DeeperCluster: 4 rotations x m = 4 level-1 clusters)
    std::size_t sub_classes = 100;   ///< k2: classes of each super-class's sub-classifier
};

/// DeeperCluster's head: super-class logits (S) and S sub-classifiers of k2
/// classes, concatenated: (B, in) -> (B, S + S*k2).
template <class T = float>
class hierarchical_classifier {
public:
    using value_type = T;
    using config_type = hierarchical_classifier_config;
    using target_type = hierarchical_classifier;
    struct cache_type {
        typename nn::linear<T>::cache_type super, sub;
    };

    hierarchical_classifier() = default;
    hierarchical_classifier(const config_type& c, std::size_t in_features, std::uint64_t seed = 0) : cfg_(c) {
        require(c.super_classes >= 2, "head::hierarchical_classifier: needs at least 2 super-classes, got ",
                c.super_classes);
        require(c.sub_classes >= 1, "head::hierarchical_classifier: needs at least 1 sub-class, got ", c.sub_classes);
        require(in_features > 0, "head::hierarchical_classifier: in_features must be positive");
        super_ = nn::linear<T>({in_features, c.super_classes, true}, seed);
        sub_ = nn::linear<T>({in_features, c.super_classes * c.sub_classes, true}, seed + 1);
    }
    const config_type& config() const noexcept { return cfg_; }
    std::size_t super_classes() const noexcept { return cfg_.super_classes; }
    std::size_t sub_classes() const noexcept { return cfg_.sub_classes; }
    std::size_t out_features() const noexcept { return cfg_.super_classes * (1 + cfg_.sub_classes); }

    forward_result<T, cache_type> forward(const tensor<T>& x) {
        auto a = super_.forward(x);
        auto b = sub_.forward(x);
        const std::size_t n = x.dim(0), s = cfg_.super_classes, w = s * cfg_.sub_classes, d = s + w;
        tensor<T> y({n, d});
        for (std::size_t i = 0; i < n; ++i) {
            std::copy_n(a.out.data() + i * s, s, y.data() + i * d);
            std::copy_n(b.out.data() + i * w, w, y.data() + i * d + s);
        }
        return {std::move(y), cache_type{std::move(a.cache), std::move(b.cache)}};
    }
    tensor<T> backward(const cache_type& c, const tensor<T>& dy) {
        const std::size_t s = cfg_.super_classes, w = s * cfg_.sub_classes, d = s + w;
        require<shape_error>(dy.rank() == 2 && dy.dim(1) == d, "head::hierarchical_classifier backward: gradient of "
                             "shape ", dy.shape().str(), ", expected (N, ", d, ")");
        const std::size_t n = dy.dim(0);
        tensor<T> da({n, s}), db({n, w});
        for (std::size_t i = 0; i < n; ++i) {
            std::copy_n(dy.data() + i * d, s, da.data() + i * s);
            std::copy_n(dy.data() + i * d + s, w, db.data() + i * w);
        }
        tensor<T> dx = super_.backward(c.super, da);
        tensor<T> dx2 = sub_.backward(c.sub, db);
        as_vector(dx) += as_vector(dx2);
        return dx;
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        super_.for_each_parameter(f, join_name(p, "super"));
        sub_.for_each_parameter(f, join_name(p, "sub"));
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) {
        super_.train(on);
        sub_.train(on);
    }
    bool training() const noexcept { return super_.training(); }
    hierarchical_classifier& target_part() noexcept { return *this; }

private:
    config_type cfg_{};
    nn::linear<T> super_, sub_;
};

}  // namespace ssl::head
