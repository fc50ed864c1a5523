#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <ssl/nn/batch_norm.hpp>
#include <ssl/nn/linear.hpp>
#include <ssl/optim.hpp>

namespace test_lars {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::param_role;
using ssl::parameter;
using ssl::shape_t;
using ssl::tensor;
using namespace ssl::optim;

namespace {

// A weight (2,), a bias (2,) and a normalization scale (1,).
struct layer {
    parameter<double> weight{shape_t{2}, param_role::weight};
    parameter<double> bias{shape_t{2}, param_role::bias};
    parameter<double> norm{shape_t{1}, param_role::norm};
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(ssl::join_name(prefix, "weight"), weight);
        f(ssl::join_name(prefix, "bias"), bias);
        f(ssl::join_name(prefix, "norm"), norm);
    }
};

void set(parameter<double>& p, std::vector<double> value, std::vector<double> grad) {
    p.value.assign(tensor<double>::from(p.value.shape(), value));
    p.grad.assign(tensor<double>::from(p.grad.shape(), grad));
}

std::string message_of_bad(const lars_config& c) {
    try {
        lars<double> opt(c);
    } catch (const ssl::value_error& e) {
        return e.what();
    }
    return "(no value_error)";
}

}  // namespace

TEST_CASE("lars: trust ratio of a weight by hand, two steps") {
    layer m;
    set(m.weight, {3, 4}, {0.6, 0.8});  // ||w|| = 5, ||grad|| = 1
    set(m.bias, {1, 2}, {0.5, -0.5});
    set(m.norm, {1}, {0.2});
    lars<double> opt(m, {.lr = 1, .momentum = 0.9, .weight_decay = 0.1, .trust_coefficient = 0.001, .eps = 1e-8});

    // step 1: local_lr = 0.001 * 5 / (1 + 0.1 * 5 + 1e-8) = 0.005 / 1.50000001 (~ 1/300)
    const double t1 = 0.005 / 1.50000001;
    CHECK(opt.local_lr(m.weight) == doctest::Approx(t1).epsilon(1e-14));
    CHECK(opt.local_lr(m.bias) == 1.0);  // excluded
    CHECK(opt.local_lr(m.norm) == 1.0);
    opt.step();
    // g = grad + 0.1 w = (0.9, 1.2); v = t1 * g; w = (3 - 0.9 t1, 4 - 1.2 t1) ~ (2.997, 3.996)
    CHECK(m.weight.value[0] == doctest::Approx(3 - 0.9 * t1).epsilon(1e-14));
    CHECK(m.weight.value[1] == doctest::Approx(4 - 1.2 * t1).epsilon(1e-14));
    CHECK(m.weight.value[0] == doctest::Approx(2.997).epsilon(1e-8));
    // excluded: v = lr * grad, no decay: bias (1, 2) - (0.5, -0.5) = (0.5, 2.5); norm 1 - 0.2 = 0.8
    CHECK(m.bias.value[0] == doctest::Approx(0.5));
    CHECK(m.bias.value[1] == doctest::Approx(2.5));
    CHECK(m.norm.value[0] == doctest::Approx(0.8));

    // step 2 (same grads): w1 = w0 (1 - 0.3 t1) since grad = w0 / 5, so ||w1|| = 5 (1 - 0.3 t1) ~ 4.995
    const double n1 = 5 * (1 - 0.3 * t1);
    const double t2 = 0.001 * n1 / (1 + 0.1 * n1 + 1e-8);
    CHECK(opt.local_lr(m.weight) == doctest::Approx(t2).epsilon(1e-14));
    opt.step();
    const double w1[2] = {3 - 0.9 * t1, 4 - 1.2 * t1};
    const double v1[2] = {0.9 * t1, 1.2 * t1};
    const double g2[2] = {0.6 + 0.1 * w1[0], 0.8 + 0.1 * w1[1]};
    for (int j = 0; j < 2; ++j)
        CHECK(m.weight.value[j] == doctest::Approx(w1[j] - (0.9 * v1[j] + t2 * g2[j])).epsilon(1e-14));
    // excluded: v = 0.9 * 0.5 + 0.5 = 0.95 -> bias (0.5 - 0.95, 2.5 + 0.95) = (-0.45, 3.45);
    //           v = 0.9 * 0.2 + 0.2 = 0.38 -> norm 0.8 - 0.38 = 0.42
    CHECK(m.bias.value[0] == doctest::Approx(-0.45));
    CHECK(m.bias.value[1] == doctest::Approx(3.45));
    CHECK(m.norm.value[0] == doctest::Approx(0.42));
}

TEST_CASE("lars: with exclude_bias_and_norm = false, biases and norms are adapted and decayed") {
    layer m;
    set(m.weight, {3, 4}, {0.6, 0.8});
    set(m.bias, {3, 4}, {0.6, 0.8});  // same numbers as the weight -> same update
    set(m.norm, {2}, {0.5});
    lars<double> opt(m, {.lr = 1, .momentum = 0.9, .weight_decay = 0.1, .exclude_bias_and_norm = false});
    // norm: local_lr = 0.001 * 2 / (0.5 + 0.1 * 2 + 1e-8) = 0.002 / 0.70000001, g = 0.5 + 0.2 = 0.7
    const double tn = 0.002 / 0.70000001;
    CHECK(opt.local_lr(m.norm) == doctest::Approx(tn).epsilon(1e-14));
    CHECK(opt.local_lr(m.bias) == doctest::Approx(0.005 / 1.50000001).epsilon(1e-14));
    opt.step();
    CHECK(m.norm.value[0] == doctest::Approx(2 - tn * 0.7).epsilon(1e-14));  // ~ 1.998
    CHECK(m.norm.value[0] == doctest::Approx(1.998).epsilon(1e-8));
    opt.step();
    CHECK(m.bias.value[0] == m.weight.value[0]);
    CHECK(m.bias.value[1] == m.weight.value[1]);
    CHECK(m.bias.value[0] > 2.99);  // excluded (momentum on the raw gradient) would give 3 - 0.6 - 1.14 = 1.26
}

TEST_CASE("lars: local_lr is 1 when ||w|| or ||grad|| is zero; momentum 0 keeps no buffer") {
    layer m;
    set(m.weight, {0, 0}, {1, 1});
    lars<double> opt(m, {.lr = 0.1, .momentum = 0, .weight_decay = 0.1});
    CHECK(opt.local_lr(m.weight) == 1.0);
    opt.step();
    // w = 0 - 0.1 * (grad + 0.1 * 0) = (-0.1, -0.1)
    CHECK(m.weight.value[0] == doctest::Approx(-0.1));
    CHECK(m.weight.value[1] == doctest::Approx(-0.1));

    set(m.weight, {3, 4}, {0, 0});
    CHECK(opt.local_lr(m.weight) == 1.0);
    opt.step();
    // g = 0 + 0.1 w, w = w - 0.1 * 0.1 w = 0.99 w = (2.97, 3.96)
    CHECK(m.weight.value[0] == doctest::Approx(2.97));
    CHECK(m.weight.value[1] == doctest::Approx(3.96));

    std::vector<std::string> names;
    opt.for_each_state([&](const std::string& name, auto&) { names.push_back(name); });
    CHECK(names == std::vector<std::string>{"step"});
}

TEST_CASE("lars: for_each_state names and shapes on real layers") {
    ssl::nn::linear<float> fc({3, 2});
    ssl::nn::batch_norm1d<float> bn({2});
    lars<float> opt(lars_config{.lr = 0.3, .weight_decay = 1e-6});
    opt.attach(fc, "fc");
    opt.attach(bn, "bn");
    std::vector<std::string> names;
    std::vector<shape_t> shapes;
    opt.for_each_state([&](const std::string& name, auto& t) {
        names.push_back(name);
        shapes.push_back(t.shape());
    });
    CHECK(names == std::vector<std::string>{"step", "fc.weight.momentum_buffer", "fc.bias.momentum_buffer",
                                            "bn.weight.momentum_buffer", "bn.bias.momentum_buffer"});
    CHECK(shapes == std::vector<shape_t>{shape_t{}, shape_t{2, 3}, shape_t{2}, shape_t{2}, shape_t{2}});
    // roles come from the layers: linear's bias and batch norm's parameters are excluded
    CHECK(opt.adapted(fc.weight()));
    CHECK_FALSE(opt.adapted(fc.bias()));
    CHECK_FALSE(opt.adapted(bn.weight()));
    CHECK_FALSE(opt.adapted(bn.bias()));
}

TEST_CASE("lars: bad configs throw value_error naming the field and the value") {
    auto has = [](const std::string& msg, const char* s) { return msg.find(s) != std::string::npos; };
    std::string msg = message_of_bad({.lr = -1});
    CHECK(has(msg, "lr"));
    CHECK(has(msg, "-1"));
    msg = message_of_bad({.momentum = 1.2});
    CHECK(has(msg, "momentum"));
    CHECK(has(msg, "1.2"));
    msg = message_of_bad({.weight_decay = -0.5});
    CHECK(has(msg, "weight_decay"));
    CHECK(has(msg, "-0.5"));
    msg = message_of_bad({.trust_coefficient = 0});
    CHECK(has(msg, "trust_coefficient"));
    msg = message_of_bad({.eps = 0});
    CHECK(has(msg, "eps"));
    msg = message_of_bad({.eps = -1e-3});
    CHECK(has(msg, "eps"));
    CHECK(has(msg, "-0.001"));
    CHECK(message_of_bad({}) == "(no value_error)");
    lars<double> opt(lars_config{});
    CHECK_THROWS_AS(opt.set_lr(-0.1), ssl::value_error);
}

TEST_CASE("lars: converges on ||w - t||^2 with a cosine schedule") {
    const double target[2] = {1.5, -2.0};
    for (double wd : {0.0, 1e-6}) {
        layer m;
        set(m.weight, {0.5, 0.5}, {0, 0});
        set(m.bias, {0, 0}, {0, 0});
        lars<double> opt(m, {.lr = 1, .momentum = 0.9, .weight_decay = wd, .trust_coefficient = 0.02});
        const warmup_cosine sched(1.0, 10, 3000);
        for (std::size_t it = 0; it < 3000; ++it) {
            opt.zero_grad();
            for (int j = 0; j < 2; ++j) {
                m.weight.grad[j] = 2 * (m.weight.value[j] - target[j]);
                m.bias.grad[j] = 2 * (m.bias.value[j] - target[j]);
            }
            opt.set_lr(sched(it));
            opt.step();
        }
        CAPTURE(wd);
        for (int j = 0; j < 2; ++j) {
            CHECK(m.weight.value[j] == doctest::Approx(target[j]).epsilon(1e-4));
            CHECK(m.bias.value[j] == doctest::Approx(target[j]).epsilon(1e-6));
        }
    }
}

TEST_CASE("lars: a weight spanning several update chunks uses the whole-tensor norms") {
    const std::size_t n = 2 * ssl::optim::detail::chunk_elements + 7;
    parameter<double> big(shape_t{n}, param_role::weight);
    double wn2 = 0, gn2 = 0;
    for (std::size_t i = 0; i < n; ++i) {
        big.value[i] = std::sin(0.01 * static_cast<double>(i));
        big.grad[i] = std::cos(0.02 * static_cast<double>(i));
        wn2 += big.value[i] * big.value[i];
        gn2 += big.grad[i] * big.grad[i];
    }
    const tensor<double> w0 = big.value.clone();
    lars<double> opt(lars_config{.lr = 2, .momentum = 0.9, .weight_decay = 0.01});
    opt.add_parameter("big", big);
    opt.step();
    const double trust = 0.001 * std::sqrt(wn2) / (std::sqrt(gn2) + 0.01 * std::sqrt(wn2) + 1e-8);
    for (std::size_t i : {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{8191}, n - 1}) {
        CAPTURE(i);
        CHECK(big.value[i] == doctest::Approx(w0[i] - 2 * trust * (big.grad[i] + 0.01 * w0[i])).epsilon(1e-12));
    }
}

}  // namespace test_lars
