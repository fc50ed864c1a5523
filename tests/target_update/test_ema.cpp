#include <doctest/doctest.h>

#include <ssl/backbone/resnet.hpp>
#include <ssl/head/mlp.hpp>
#include <ssl/target_update/ema.hpp>
#include <ssl/target_update/none.hpp>

#include <cmath>
#include <numbers>

namespace test_ema {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("ema: BYOL's cosine schedule") {
    ssl::target::ema_config c{0.99, true};
    CHECK(ssl::target::ema_tau(c, 0, 100) == doctest::Approx(0.99));
    CHECK(ssl::target::ema_tau(c, 100, 100) == doctest::Approx(1.0));
    CHECK(ssl::target::ema_tau(c, 50, 100) == doctest::Approx(1 - 0.01 * 0.5));
    CHECK(ssl::target::ema_tau(c, 25, 100) == doctest::Approx(1 - 0.01 * (std::cos(std::numbers::pi / 4) + 1) / 2));
    CHECK(ssl::target::ema_tau({0.9, false}, 70, 100) == doctest::Approx(0.9));
}

TEST_CASE("ema: the update formula, and the target owns its storage") {
    using net_t = ssl::resnet18<double>;
    using head_t = ssl::head::mlp<double>;
    net_t online({.in_channels = 1, .width = 2, .stem = ssl::stem::cifar});
    head_t head({8, 4, true}, online.output_dim());
    ssl::target::ema::state<net_t, head_t> st({0.9, false}, online, head);
    auto on = ssl::parameter_list<double>(online);
    auto tg = ssl::parameter_list<double>(st.backbone());
    REQUIRE(on.size() == tg.size());
    CHECK_FALSE(on[0]->value.shares_storage_with(tg[0]->value));  // a deep copy
    const double t0 = tg[0]->value[0], o0 = on[0]->value[0];
    CHECK(t0 == o0);
    on[0]->value[0] = o0 + 1.0;  // the online network moves
    CHECK(tg[0]->value[0] == t0);
    CHECK_FALSE(st.after_step(online, head, {}, ssl::target_step{0, 10}).data_pass);
    CHECK(tg[0]->value[0] == doctest::Approx(0.9 * t0 + 0.1 * (o0 + 1.0)));
    CHECK(st.tau() == doctest::Approx(0.9));
    // targets: one output per view, of the head's size
    auto out = st.outputs({ssl::tensor<double>::full({3, 1, 8, 8}, 0.5), ssl::tensor<double>::full({3, 1, 8, 8}, 0.1)});
    REQUIRE(out.size() == 2);
    CHECK(out[0].shape() == ssl::shape_t{3, 4});
    // targets(target_input): the same outputs for the batch's views
    ssl::view_batch<double> vb{{ssl::tensor<double>::full({3, 1, 8, 8}, 0.5), ssl::tensor<double>::full({3, 1, 8, 8}, 0.1)}, {}};
    vb.ids = {0, 1, 2};
    const std::vector<ssl::tensor<double>> online_out;
    auto out2 = st.targets(ssl::target_input<double>{vb, online_out, 1, 10, 0});
    REQUIRE(out2.size() == 2);
    for (std::size_t v = 0; v < 2; ++v) {
        REQUIRE(out2[v].shape() == out[v].shape());
        CHECK(std::equal(out2[v].begin(), out2[v].end(), out[v].begin()));
    }
    std::size_t n = 0;
    st.for_each_state([&](const std::string& name, auto&) { n += name.rfind("t.backbone.", 0) == 0 || name.rfind("t.head.", 0) == 0; }, "t");
    CHECK(n > 100);
    CHECK_THROWS_AS((ssl::target::ema::state<net_t, head_t>({1.5, true}, online, head)), ssl::value_error);
}

}  // namespace test_ema
