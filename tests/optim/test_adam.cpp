#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ssl/nn/linear.hpp>
#include <ssl/optim.hpp>

namespace test_adam {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::param_role;
using ssl::parameter;
using ssl::shape_t;
using ssl::tensor;
using namespace ssl::optim;

namespace {

// One scalar weight w (1,) and a vector v (3,).
struct pair_module {
    parameter<double> w{shape_t{1}, param_role::weight};
    parameter<double> v{shape_t{3}, param_role::bias};
    pair_module() {
        w.value[0] = 1;
        v.value.assign(tensor<double>::from({3}, {0.5, -1, 2}));
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(ssl::join_name(prefix, "w"), w);
        f(ssl::join_name(prefix, "v"), v);
    }
};

// The scalar's gradients in steps 1 and 2.
constexpr double g_step[2] = {0.5, -1};

template <class Opt>
std::vector<double> two_steps(Opt& opt, pair_module& m) {
    std::vector<double> out;
    for (int k = 0; k < 2; ++k) {
        m.w.grad[0] = g_step[k];
        opt.step();
        out.push_back(m.w.value[0]);
    }
    return out;
}

template <class Cfg>
std::string message_of_bad(const Cfg& c) {
    try {
        if constexpr (std::is_same_v<Cfg, adam_config>)
            adam<double> opt(c);
        else
            adamw<double> opt(c);
    } catch (const ssl::value_error& e) {
        return e.what();
    }
    return "(no value_error)";
}

}  // namespace

TEST_CASE("adam: first two steps by hand (bias correction)") {
    // lr 0.1, betas (0.9, 0.999), eps 1e-8, w0 = 1, grads 0.5 then -1.
    // step 1: m = 0.1 * 0.5 = 0.05, v = 0.001 * 0.25 = 0.00025
    //         step_size = 0.1 / (1 - 0.9) = 1, denom = sqrt(0.00025) / sqrt(0.001) + eps = 0.5 + 1e-8
    //         w1 = 1 - 0.05 / (0.5 + 1e-8) = 0.900000002
    // step 2: m = 0.045 - 0.1 = -0.055, v = 0.999 * 0.00025 + 0.001 * 1 = 0.00124975
    //         bias corrections 1 - 0.81 = 0.19 and 1 - 0.998001 = 0.001999
    //         w2 = w1 - (0.1 / 0.19) * (-0.055) / (sqrt(0.00124975 / 0.001999) + 1e-8) ~ 0.93661035
    pair_module m;
    adam<double> opt(m, {.lr = 0.1});
    auto w = two_steps(opt, m);
    const double w1 = 1 - 0.05 / (0.5 + 1e-8);
    CHECK(w[0] == doctest::Approx(w1).epsilon(1e-14));
    CHECK(w[0] == doctest::Approx(0.900000002).epsilon(1e-12));
    const double w2 = w1 - (0.1 / 0.19) * -0.055 / (std::sqrt(0.00124975 / 0.001999) + 1e-8);
    CHECK(w[1] == doctest::Approx(w2).epsilon(1e-12));
    CHECK(w[1] == doctest::Approx(0.93661035424).epsilon(1e-10));
    // the moments
    std::map<std::string, double> st;
    opt.for_each_state([&](const std::string& name, auto& t) { st[name] = static_cast<double>(t[0]); });
    CHECK(st.at("step") == 2);
    CHECK(st.at("w.exp_avg") == doctest::Approx(-0.055).epsilon(1e-14));
    CHECK(st.at("w.exp_avg_sq") == doctest::Approx(0.00124975).epsilon(1e-14));
    // v had zero gradients throughout: its moments stay 0 and it does not move
    CHECK(st.at("v.exp_avg") == 0.0);
    CHECK(m.v.value[1] == -1.0);
}

TEST_CASE("adam: L2 weight decay (added to the gradient)") {
    // wd 0.1: step 1: g = 0.5 + 0.1 * 1 = 0.6, m = 0.06, v = 0.00036
    //         w1 = 1 - 1 * 0.06 / (0.6 + 1e-8) ~ 0.9000000017
    // step 2: g = -1 + 0.1 * w1 ~ -0.91, m = 0.054 + 0.1 g ~ -0.037, v = 0.999 * 0.00036 + 0.001 g^2 ~ 0.00118774
    //         w2 = w1 - (0.1 / 0.19) m / (sqrt(v / 0.001999) + 1e-8) ~ 0.92526352
    pair_module m;
    adam<double> opt(m, {.lr = 0.1, .weight_decay = 0.1});
    auto w = two_steps(opt, m);
    const double w1 = 1 - 0.06 / (0.6 + 1e-8);
    CHECK(w[0] == doctest::Approx(w1).epsilon(1e-14));
    const double g2 = -1 + 0.1 * w1;
    const double m2 = 0.9 * 0.06 + 0.1 * g2;
    const double v2 = 0.999 * 0.00036 + 0.001 * g2 * g2;
    CHECK(m2 == doctest::Approx(-0.037).epsilon(1e-8));
    const double w2 = w1 - (0.1 / 0.19) * m2 / (std::sqrt(v2 / 0.001999) + 1e-8);
    CHECK(w[1] == doctest::Approx(w2).epsilon(1e-12));
    CHECK(w[1] == doctest::Approx(0.92526351945).epsilon(1e-10));
    // L2 decay also reaches parameters with zero gradient: v = (0.5, -1, 2) gets g = 0.1 v, and with a
    // gradient of constant sign each Adam step is ~lr: 0.5 -> 0.4 -> ~0.301, -1 -> -0.9 -> ~-0.800
    CHECK(m.v.value[0] == doctest::Approx(0.3).epsilon(0.01));
    CHECK(m.v.value[1] == doctest::Approx(-0.8).epsilon(0.01));
}

TEST_CASE("adamw: decoupled decay w -= lr * wd * w before the Adam update") {
    // wd 0.1, lr 0.1: step 1: w = 1 * (1 - 0.01) = 0.99, then the plain Adam step: w1 = 0.99 - 0.05 / (0.5 + 1e-8)
    // step 2: w = 0.99 w1, then the plain Adam step 2 (same m, v as without decay)
    pair_module m;
    adamw<double> opt(m, {.lr = 0.1, .weight_decay = 0.1});
    CHECK(opt.config().decoupled);
    auto w = two_steps(opt, m);
    const double w1 = 0.99 - 0.05 / (0.5 + 1e-8);
    CHECK(w[0] == doctest::Approx(w1).epsilon(1e-14));
    CHECK(w[0] == doctest::Approx(0.890000002).epsilon(1e-12));
    const double w2 = 0.99 * w1 - (0.1 / 0.19) * -0.055 / (std::sqrt(0.00124975 / 0.001999) + 1e-8);
    CHECK(w[1] == doctest::Approx(w2).epsilon(1e-12));
    CHECK(w[1] == doctest::Approx(0.91771035422).epsilon(1e-10));
    // zero-gradient parameters only shrink: v * 0.99^2
    CHECK(m.v.value[2] == doctest::Approx(2 * 0.99 * 0.99).epsilon(1e-14));

    // adam_config{decoupled = true} is the same optimizer
    pair_module m2;
    adam<double> same(m2, {.lr = 0.1, .weight_decay = 0.1, .decoupled = true});
    auto w_same = two_steps(same, m2);
    CHECK(w_same[0] == w[0]);
    CHECK(w_same[1] == w[1]);

    // Adam with the same weight decay gives different numbers (0.9 vs 0.89 after one step)
    pair_module m3;
    adam<double> l2(m3, {.lr = 0.1, .weight_decay = 0.1});
    auto w_l2 = two_steps(l2, m3);
    CHECK(std::abs(w_l2[0] - w[0]) > 5e-3);
    CHECK(std::abs(w_l2[1] - w[1]) > 5e-3);
}

TEST_CASE("adamw: defaults follow torch.optim.AdamW") {
    adamw<float> opt(adamw_config{});
    CHECK(opt.config().lr == 1e-3);
    CHECK(opt.config().weight_decay == 1e-2);
    CHECK(opt.config().decoupled);
    CHECK(opt.config().beta1 == 0.9);
    CHECK(opt.config().beta2 == 0.999);
    CHECK(opt.config().eps == 1e-8);
    adam<float> plain(adam_config{});
    CHECK(plain.config().weight_decay == 0);
    CHECK_FALSE(plain.config().decoupled);
}

TEST_CASE("adam: for_each_state names and shapes, created before the first step, restored exactly") {
    ssl::nn::linear<double> fc({2, 3});
    adam<double> opt(fc, {.lr = 0.01}, "fc");
    std::vector<std::string> names;
    std::vector<shape_t> shapes;
    opt.for_each_state([&](const std::string& name, auto& t) {
        names.push_back(name);
        shapes.push_back(t.shape());
    });
    CHECK(names == std::vector<std::string>{"step", "fc.weight.exp_avg", "fc.weight.exp_avg_sq", "fc.bias.exp_avg",
                                            "fc.bias.exp_avg_sq"});
    CHECK(shapes ==
          std::vector<shape_t>{shape_t{}, shape_t{3, 2}, shape_t{3, 2}, shape_t{3}, shape_t{3}});

    // Checkpoint round trip: A runs 3 steps; B runs 2, its params + state go into C, C runs the 3rd.
    // The restored step count matters: bias correction at t = 3 differs from t = 1.
    pair_module ma, mb, mc;
    adamw<double> a(ma, {.lr = 0.1});
    adamw<double> b(mb, {.lr = 0.1});
    adamw<double> c(mc, {.lr = 0.1});
    const double grads[3] = {0.5, -1, 0.25};
    for (int k = 0; k < 2; ++k) {
        ma.w.grad[0] = mb.w.grad[0] = grads[k];
        a.step();
        b.step();
    }
    std::map<std::string, tensor<double>> saved;
    tensor<std::int64_t> saved_step;
    b.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) saved[name] = t.clone();
        else saved_step = t.clone();
    });
    mc.w.value.assign(mb.w.value);
    mc.v.value.assign(mb.v.value);
    c.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) t = saved.at(name).clone();
        else t = saved_step;  // replacing the tensor works as well as writing into it
    });
    CHECK(c.step_count() == 2);
    ma.w.grad[0] = mc.w.grad[0] = grads[2];
    a.step();
    c.step();
    CHECK(mc.w.value[0] == ma.w.value[0]);
    for (int j = 0; j < 3; ++j) CHECK(mc.v.value[j] == ma.v.value[j]);

    // without the step count the third update differs
    pair_module md;
    adamw<double> d(md, {.lr = 0.1});
    md.w.value.assign(mb.w.value);
    d.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) t.assign(saved.at(name));
    });
    md.w.grad[0] = grads[2];
    d.step();
    CHECK(std::abs(md.w.value[0] - ma.w.value[0]) > 1e-3);

    c.set_step_count(7);
    CHECK(c.step_count() == 7);
    CHECK_THROWS_AS(c.set_step_count(-1), ssl::value_error);
}

TEST_CASE("adam: bad configs throw value_error naming the field and the value") {
    auto has = [](const std::string& msg, const char* s) { return msg.find(s) != std::string::npos; };
    std::string msg = message_of_bad(adam_config{.lr = -0.001});
    CHECK(has(msg, "adam_config.lr"));
    CHECK(has(msg, "-0.001"));
    msg = message_of_bad(adam_config{.beta1 = 1.0});
    CHECK(has(msg, "beta1"));
    msg = message_of_bad(adam_config{.beta2 = -0.1});
    CHECK(has(msg, "beta2"));
    CHECK(has(msg, "-0.1"));
    msg = message_of_bad(adam_config{.beta2 = 1.5});
    CHECK(has(msg, "beta2"));
    CHECK(has(msg, "1.5"));
    msg = message_of_bad(adam_config{.eps = 0});
    CHECK(has(msg, "eps"));
    msg = message_of_bad(adam_config{.eps = -1e-8});
    CHECK(has(msg, "eps"));
    msg = message_of_bad(adam_config{.weight_decay = -0.01});
    CHECK(has(msg, "weight_decay"));
    CHECK(has(msg, "-0.01"));
    msg = message_of_bad(adamw_config{.weight_decay = -0.01});
    CHECK(has(msg, "adamw_config.weight_decay"));
    msg = message_of_bad(adamw_config{.beta1 = 2});
    CHECK(has(msg, "adamw_config.beta1"));
    CHECK(message_of_bad(adam_config{}) == "(no value_error)");
    CHECK(message_of_bad(adamw_config{}) == "(no value_error)");
    adamw<double> opt(adamw_config{});
    CHECK_THROWS_AS(opt.set_lr(-1), ssl::value_error);
}

TEST_CASE("adam and adamw converge on ||w - t||^2") {
    const double target[3] = {1.5, -0.5, 2.0};
    // cosine-annealed lr (0.05 -> 0) over 3000 steps
    auto run = [&](auto& opt, pair_module& m) {
        const warmup_cosine sched(0.05, 0, 3000);
        for (std::size_t it = 0; it < 3000; ++it) {
            opt.zero_grad();
            m.w.grad[0] = 2 * (m.w.value[0] - 3.0);
            for (int j = 0; j < 3; ++j) m.v.grad[j] = 2 * (m.v.value[j] - target[j]);
            opt.set_lr(sched(it));
            opt.step();
        }
    };
    pair_module m1, m2, m3;
    adam<double> a(m1, {});
    adam<double> a_l2(m2, {.weight_decay = 1e-4});
    adamw<double> aw(m3, {});  // decoupled decay 1e-2
    run(a, m1);
    run(a_l2, m2);
    run(aw, m3);
    CHECK(m1.w.value[0] == doctest::Approx(3.0).epsilon(1e-9));
    for (int j = 0; j < 3; ++j) CHECK(m1.v.value[j] == doctest::Approx(target[j]).epsilon(1e-9));
    // with decay the minimum moves slightly toward 0 (by design), so the tolerance is looser
    CHECK(m2.w.value[0] == doctest::Approx(3.0).epsilon(1e-3));
    for (int j = 0; j < 3; ++j) CHECK(m2.v.value[j] == doctest::Approx(target[j]).epsilon(1e-3));
    CHECK(m3.w.value[0] == doctest::Approx(3.0).epsilon(5e-3));
    for (int j = 0; j < 3; ++j) {
        CHECK(m3.v.value[j] == doctest::Approx(target[j]).epsilon(5e-3));
        CHECK(std::abs(m3.v.value[j]) < std::abs(target[j]));
    }
}

TEST_CASE("adam<float>: one step on a float parameter") {
    parameter<float> p(shape_t{2}, param_role::weight);
    p.value.assign(tensor<float>::from({2}, {1.f, -1.f}));
    p.grad.assign(tensor<float>::from({2}, {0.5f, -2.f}));
    adam<float> opt(adam_config{.lr = 0.1});
    opt.add_parameter("p", p);
    opt.step();
    // the first Adam step moves each element by ~lr against its gradient's sign
    CHECK(p.value[0] == doctest::Approx(0.9f));
    CHECK(p.value[1] == doctest::Approx(-0.9f));
    static_assert(ssl::optim::optimizer<adam<float>>);
    static_assert(ssl::optim::optimizer<adamw<double>>);
}

TEST_CASE("adam: a parameter spanning several update chunks is updated everywhere") {
    const std::size_t n = 2 * ssl::optim::detail::chunk_elements + 3;
    parameter<double> big(shape_t{n}, param_role::weight);
    for (std::size_t i = 0; i < n; ++i) {
        big.value[i] = std::sin(0.01 * static_cast<double>(i));
        big.grad[i] = std::cos(0.02 * static_cast<double>(i));
    }
    const tensor<double> w0 = big.value.clone();
    adam<double> opt(adam_config{.lr = 0.1, .weight_decay = 0.05});
    opt.add_parameter("big", big);
    opt.step();
    opt.step();
    for (std::size_t i : {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{8191}, n - 1}) {
        double w = w0[i], m = 0, v = 0;
        for (int t = 1; t <= 2; ++t) {
            const double g = big.grad[i] + 0.05 * w;
            m = 0.9 * m + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            w -= 0.1 / (1 - std::pow(0.9, t)) * m / (std::sqrt(v / (1 - std::pow(0.999, t))) + 1e-8);
        }
        CAPTURE(i);
        CHECK(big.value[i] == doctest::Approx(w).epsilon(1e-12));
    }
}

}  // namespace test_adam
