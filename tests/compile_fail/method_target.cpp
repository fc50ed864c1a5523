// A target update with the old protocol (targets(views) and an after_step that
// takes no batch) fails with the target sentence.
#include "method_policies.hpp"
namespace cf {
struct old_protocol_target {
    struct config_type {};
    template <class Backbone, class Head>
    struct state {
        state(const config_type&, Backbone&, Head&) {}
        std::vector<ssl::tensor<float>> targets(const std::vector<ssl::tensor<float>>&) { return {}; }
        void after_step(Backbone&, Head&, std::size_t, std::size_t) {}
        template <class F>
        void for_each_state(F&&, const std::string&) {}
    };
};
}  // namespace cf
template class ssl::method<cf::ok_backbone, cf::ok_augment, cf::ok_head, cf::ok_loss, cf::old_protocol_target>;
