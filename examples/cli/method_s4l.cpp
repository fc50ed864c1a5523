#include "common.hpp"

#include <ssl/s4l.hpp>

// S4L (Zhai et al. 2019): one `--method s4l` with two variants, each its own
// method type (ssl::s4l_rotation, ssl::s4l_exemplar); the entry dispatches on
// --variant when training and on the stored config (its augmentation) when
// a checkpoint is read back.
namespace cli {
namespace {
struct s4l_options {
    std::optional<std::string> variant;
    std::optional<double> labelled_fraction, self_weight, labelled_share;
    std::optional<std::size_t> embedding_dim, copies;
};
s4l_options& s4l_opts() {
    static s4l_options o;
    return o;
}

/// The labelled subset of the training set: stratified, seeded by --seed.
std::vector<std::size_t> s4l_subset(const common_options& o, const ssl::data::image_dataset& d, double fraction) {
    return ssl::data::labelled_subset(d, fraction, o.seed, "--labelled-fraction");
}

template <class Config>
void s4l_common_loss(Config& c, const common_options& o, double fraction) {
    c.loss.labelled_fraction = fraction;
    c.loss.subset_seed = o.seed;
    if (s4l_opts().self_weight) c.loss.self_weight = *s4l_opts().self_weight;
    if (s4l_opts().labelled_share) c.target.share = *s4l_opts().labelled_share;
}

struct s4l_rotation_spec {
    static constexpr const char* name = "s4l";
    static constexpr const char* summary = "S4L: a few labels + a self-supervised pretext (rotation or exemplar)";
    template <class B>
    using method = ssl::s4l_rotation<B>;
    void add_options(method_options&) {}
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        const double f = s4l_opts().labelled_fraction.value_or(0.1);
        auto l = s4l_subset(o, d, f);
        auto c = ssl::s4l_rotation_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), d.num_classes,
                                                      std::move(l));
        s4l_common_loss(c, o, f);
        return c;
    }
};

struct s4l_exemplar_spec {
    static constexpr const char* name = "s4l";
    static constexpr const char* summary = s4l_rotation_spec::summary;
    template <class B>
    using method = ssl::s4l_exemplar<B>;
    void add_options(method_options&) {}
    recipe defaults() const { return {.base_lr = 0.1, .weight_decay = 5e-4}; }
    auto config(const common_options& o, const ssl::data::image_dataset& d, std::size_t) const {
        const double f = s4l_opts().labelled_fraction.value_or(0.1);
        auto l = s4l_subset(o, d, f);
        auto c = ssl::s4l_exemplar_config<backbone_t>(backbone_options(o, d), d.height(), d.channels(), d.num_classes,
                                                      std::move(l), s4l_opts().embedding_dim.value_or(1000));
        if (s4l_opts().copies) c.augment.copies = *s4l_opts().copies;
        s4l_common_loss(c, o, f);
        return c;
    }
};

/// `ssl eval` of a run's checkpoint: the class head's own top-1 on the test
/// set (the semi-supervised classifier S4L trains), besides kNN and the probe.
/// A backbone-only file has no class head: nothing is printed.
template <class M>
void s4l_class_head_top1(const nlohmann::json& config, const common_options& o, const ssl::io::safetensors_file& file,
                         const data_sets& d) {
    if (!d.test || !d.test->labelled()) return;
    M m(ssl::io::config_from_json<typename M::config>(config, "checkpoint '" + o.checkpoint + "'"));
    if (holds_backbone(m.backbone(), file)) return;
    ssl::load_state_dict(m, file, false, o.checkpoint);
    const std::size_t s = m.cfg().loss.self_outputs, k = m.cfg().loss.classes;
    if (d.test->num_classes != k) return;  // another label set: the head's classes mean nothing there
    m.train(false);
    const auto& test = *d.test;
    std::size_t correct = 0;
    for (std::size_t b = 0; b < test.size(); b += 512) {
        std::vector<std::size_t> idx;
        for (std::size_t i = b; i < std::min(test.size(), b + 512); ++i) idx.push_back(i);
        const auto f = m.backbone().forward(m.augmentation().eval_transform(test.batch(idx))).out;
        const auto y = m.head().forward(f).out;  // (n, s + k)
        for (std::size_t q = 0; q < idx.size(); ++q) {
            const float* z = y.data() + q * (s + k) + s;
            correct += static_cast<std::int64_t>(std::max_element(z, z + k) - z) == test.labels[idx[q]];
        }
    }
    std::printf("class head top-1 %.2f %% (%zu test images)\n",
                100.0 * static_cast<double>(correct) / static_cast<double>(test.size()), test.size());
}

class s4l_method_entry final : public method_entry {
public:
    const char* name() const override { return "s4l"; }
    const char* summary() const override { return s4l_rotation_spec::summary; }
    void add_options(method_options& o) override {
        auto& v = s4l_opts();
        o.add("--variant", v.variant, "s4l: the self-supervised pretext, rotation (default) or exemplar",
              CLI::IsMember({"rotation", "exemplar"}));
        o.add("--labelled-fraction", v.labelled_fraction,
              "s4l: the fraction of each class whose labels are used (stratified, seeded by --seed; default 0.1, "
              "the paper: 0.1 or 0.01)",
              positive_number());
        o.add("--self-weight", v.self_weight,
              "s4l: w, the self-supervised loss's weight (default 1; 0: the supervised-only baseline on the same "
              "labelled subset)",
              non_negative_number());
        o.add("--labelled-share", v.labelled_share,
              "s4l: the share of every batch drawn from the labelled subset (default 0.5, the paper's equal labelled "
              "and unlabelled minibatches; 0: the plain permutation, each labelled image once per epoch)",
              CLI::Range(0.0, 0.99));
        o.add("--embedding-dim", v.embedding_dim, "s4l exemplar: the normalised embedding's width (default 1000)",
              CLI::Range(std::size_t{2}, std::size_t{1} << 16));
        o.add("--copies", v.copies, "s4l exemplar: augmented copies per image (default 8)",
              CLI::Range(std::size_t{2}, std::size_t{64}));
    }
    recipe defaults() const override { return rot_.defaults(); }
    nlohmann::json config(const common_options& o, const ssl::data::image_dataset& train,
                          std::size_t instances) const override {
        const bool ex = s4l_opts().variant.value_or("rotation") == "exemplar";
        if (!ex && (s4l_opts().embedding_dim || s4l_opts().copies))
            throw ssl::value_error("--embedding-dim and --copies apply to --method s4l --variant exemplar only");
        return ex ? ex_.config(o, train, instances) : rot_.config(o, train, instances);
    }
    int train(const run_document& run, const common_options& o, const data_sets& d) const override {
        return exemplar(run.config) ? ex_.train(run, o, d) : rot_.train(run, o, d);
    }
    int from_checkpoint(const nlohmann::json& config, const common_options& o, const ssl::io::safetensors_file& file,
                        const data_sets* d, checkpoint_action action) const override {
        const bool ex = exemplar(config);
        const int rc = ex ? ex_.from_checkpoint(config, o, file, d, action)
                          : rot_.from_checkpoint(config, o, file, d, action);
        if (rc == 0 && action == checkpoint_action::eval && d) {
            if (ex) s4l_class_head_top1<s4l_exemplar_spec::method<backbone_t>>(config, o, file, *d);
            else s4l_class_head_top1<s4l_rotation_spec::method<backbone_t>>(config, o, file, *d);
        }
        return rc;
    }

private:
    /// The exemplar variant's config has augmented copies ("augment.copies").
    static bool exemplar(const nlohmann::json& c) {
        return c.is_object() && c.contains("augment") && c["augment"].is_object() && c["augment"].contains("copies");
    }
    entry_impl<s4l_rotation_spec> rot_;
    entry_impl<s4l_exemplar_spec> ex_;
};
}  // namespace
method_entry& s4l_entry() {
    static s4l_method_entry e;
    return e;
}
}  // namespace cli
