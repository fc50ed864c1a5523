#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <ssl/nn/linear.hpp>
#include <ssl/optim.hpp>

namespace test_sgd {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::param_role;
using ssl::parameter;
using ssl::shape_t;
using ssl::tensor;
using namespace ssl::optim;

namespace {

// a: one scalar (1,), b: three elements (3,).
struct toy {
    parameter<double> a{shape_t{1}, param_role::weight};
    parameter<double> b{shape_t{3}, param_role::weight};
    toy() {
        a.value[0] = 1;
        b.value.assign(tensor<double>::from({3}, {1, -2, 3}));
    }
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(ssl::join_name(prefix, "a"), a);
        f(ssl::join_name(prefix, "b"), b);
    }
};

// a's gradient changes every step (0.5, -1, 2); b's stays (0.5, 1, -1).
constexpr double a_grads[3] = {0.5, -1, 2};
void set_grads(toy& m, int k) {
    m.a.grad[0] = a_grads[k];
    m.b.grad.assign(tensor<double>::from({3}, {0.5, 1, -1}));
}

struct expected {
    double a[3];     // a after steps 1, 2, 3
    double b[3][3];  // b after steps 1, 2, 3
};

void run_three_steps(const sgd_config& c, const expected& e) {
    toy m;
    sgd<double> opt(m, c);
    for (int k = 0; k < 3; ++k) {
        set_grads(m, k);
        opt.step();
        CAPTURE(k);
        CHECK(m.a.value[0] == doctest::Approx(e.a[k]).epsilon(1e-12));
        for (int j = 0; j < 3; ++j) CHECK(m.b.value[j] == doctest::Approx(e.b[k][j]).epsilon(1e-12));
        // the gradient is read, never modified
        CHECK(m.a.grad[0] == a_grads[k]);
        CHECK(m.b.grad[1] == 1.0);
    }
    CHECK(opt.step_count() == 3);
}

std::string message_of_bad(const sgd_config& c) {
    try {
        sgd<double> opt(c);
    } catch (const ssl::value_error& e) {
        return e.what();
    }
    return "(no value_error)";
}

}  // namespace

TEST_CASE("sgd: plain gradient descent, lr 0.1") {
    // a: 1 - 0.1*0.5 = 0.95; 0.95 + 0.1 = 1.05; 1.05 - 0.2 = 0.85
    // b: b0 - 0.1*k*g, g = (0.5, 1, -1)
    run_three_steps({.lr = 0.1}, {{0.95, 1.05, 0.85}, {{0.95, -2.1, 3.1}, {0.9, -2.2, 3.2}, {0.85, -2.3, 3.3}}});
}

TEST_CASE("sgd: momentum 0.9 (first buffer = grad)") {
    // a: buf = 0.5,            w = 1 - 0.05 = 0.95
    //    buf = 0.45 - 1 = -0.55, w = 0.95 + 0.055 = 1.005
    //    buf = -0.495 + 2 = 1.505, w = 1.005 - 0.1505 = 0.8545
    // b: buf = g, 1.9 g, 2.71 g  ->  b0 - 0.1 g * (1, 2.9, 5.61)
    run_three_steps({.lr = 0.1, .momentum = 0.9},
                    {{0.95, 1.005, 0.8545}, {{0.95, -2.1, 3.1}, {0.855, -2.29, 3.29}, {0.7195, -2.561, 3.561}}});
}

TEST_CASE("sgd: momentum 0.9 with dampening 0.5 (none on the first step)") {
    // a: buf = 0.5 (undamped),               w = 0.95
    //    buf = 0.45 + 0.5*(-1) = -0.05,       w = 0.95 + 0.005 = 0.955
    //    buf = -0.045 + 0.5*2 = 0.955,        w = 0.955 - 0.0955 = 0.8595
    // b: buf = g, 0.9g + 0.5g = 1.4g, 1.26g + 0.5g = 1.76g -> b0 - 0.1 g * (1, 2.4, 4.16)
    run_three_steps({.lr = 0.1, .momentum = 0.9, .dampening = 0.5},
                    {{0.95, 0.955, 0.8595}, {{0.95, -2.1, 3.1}, {0.88, -2.24, 3.24}, {0.792, -2.416, 3.416}}});
}

TEST_CASE("sgd: Nesterov momentum 0.9") {
    // a: buf = 0.5,   d = 0.5 + 0.45 = 0.95,        w = 1 - 0.095 = 0.905
    //    buf = -0.55, d = -1 - 0.495 = -1.495,      w = 0.905 + 0.1495 = 1.0545
    //    buf = 1.505, d = 2 + 1.3545 = 3.3545,      w = 1.0545 - 0.33545 = 0.71905
    // b: buf = g, 1.9g, 2.71g; d = 1.9g, 2.71g, 3.439g -> b0 - g * (0.19, 0.461, 0.8049)
    run_three_steps({.lr = 0.1, .momentum = 0.9, .nesterov = true},
                    {{0.905, 1.0545, 0.71905}, {{0.905, -2.19, 3.19}, {0.7695, -2.461, 3.461}, {0.59755, -2.8049, 3.8049}}});
}

TEST_CASE("sgd: weight decay 0.1 added to the gradient") {
    // a: d = 0.5 + 0.1 = 0.6,        w = 1 - 0.06 = 0.94
    //    d = -1 + 0.094 = -0.906,    w = 0.94 + 0.0906 = 1.0306
    //    d = 2 + 0.10306 = 2.10306,  w = 1.0306 - 0.210306 = 0.820294
    // b: w <- 0.99 w - 0.1 g per element:
    //    1 -> 0.94 -> 0.8806 -> 0.821794;  -2 -> -2.08 -> -2.1592 -> -2.237608;  3 -> 3.07 -> 3.1393 -> 3.207907
    run_three_steps({.lr = 0.1, .weight_decay = 0.1},
                    {{0.94, 1.0306, 0.820294},
                     {{0.94, -2.08, 3.07}, {0.8806, -2.1592, 3.1393}, {0.821794, -2.237608, 3.207907}}});
}

TEST_CASE("sgd: weight decay 0.1 with momentum 0.9 (decay inside the buffer)") {
    // a: d = 0.6,      buf = 0.6,                      w = 0.94
    //    d = -0.906,   buf = 0.54 - 0.906 = -0.366,    w = 0.94 + 0.0366 = 0.9766
    //    d = 2.09766,  buf = -0.3294 + 2.09766 = 1.76826, w = 0.9766 - 0.176826 = 0.799774
    toy m;
    sgd<double> opt(m, {.lr = 0.1, .momentum = 0.9, .weight_decay = 0.1});
    const double want[3] = {0.94, 0.9766, 0.799774};
    for (int k = 0; k < 3; ++k) {
        set_grads(m, k);
        opt.step();
        CHECK(m.a.value[0] == doctest::Approx(want[k]).epsilon(1e-12));
    }
}

TEST_CASE("sgd: zero_grad zeroes every attached gradient, state is per parameter") {
    toy m;
    sgd<double> opt(m, {.lr = 0.1, .momentum = 0.9});
    set_grads(m, 0);
    opt.step();
    std::map<std::string, tensor<double>> state;
    opt.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) state[name] = t;
    });
    REQUIRE(state.size() == 2);
    // each buffer holds its own parameter's first gradient
    CHECK(state.at("a.momentum_buffer").shape() == shape_t{1});
    CHECK(state.at("a.momentum_buffer")[0] == 0.5);
    CHECK(state.at("b.momentum_buffer").shape() == shape_t{3});
    CHECK(state.at("b.momentum_buffer")[1] == 1.0);
    CHECK(state.at("b.momentum_buffer")[2] == -1.0);
    CHECK_FALSE(state.at("a.momentum_buffer").shares_storage_with(state.at("b.momentum_buffer")));

    opt.zero_grad();
    CHECK(m.a.grad[0] == 0.0);
    for (double g : m.b.grad) CHECK(g == 0.0);
    // stepping with zero gradients keeps moving by momentum only: a = 0.95 - 0.1*0.9*0.5
    opt.step();
    CHECK(m.a.value[0] == doctest::Approx(0.905));
}

TEST_CASE("sgd: for_each_state names, shapes, step counter; state exists before the first step") {
    toy m;
    sgd<double> opt(sgd_config{.lr = 0.1, .momentum = 0.9});
    opt.attach(m, "net");
    CHECK_FALSE(opt.has_state());
    std::vector<std::string> names;
    std::vector<shape_t> shapes;
    opt.for_each_state([&](const std::string& name, auto& t) {
        names.push_back(name);
        shapes.push_back(t.shape());
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<std::int64_t>>) CHECK(t[0] == 0);
        else
            for (double v : t) CHECK(v == 0.0);
    });
    CHECK(opt.has_state());
    CHECK(names == std::vector<std::string>{"step", "net.a.momentum_buffer", "net.b.momentum_buffer"});
    CHECK(shapes == std::vector<shape_t>{shape_t{}, shape_t{1}, shape_t{3}});
    // no attach once the state exists
    toy other;
    CHECK_THROWS_AS(opt.attach(other, "other"), ssl::value_error);

    // momentum 0: no buffers, only the counter
    toy m2;
    sgd<double> plain(m2, {.lr = 0.1});
    names.clear();
    plain.for_each_state([&](const std::string& name, auto&) { names.push_back(name); });
    CHECK(names == std::vector<std::string>{"step"});
}

TEST_CASE("sgd: restoring state from a checkpoint continues the run exactly") {
    // Run A: 3 steps. Run B: 2 steps, copy params + state into a fresh optimizer, 1 more step.
    toy ma;
    sgd<double> a(ma, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    toy mb;
    sgd<double> b(mb, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    for (int k = 0; k < 2; ++k) {
        set_grads(ma, k);
        set_grads(mb, k);
        a.step();
        b.step();
    }
    std::map<std::string, tensor<double>> saved;
    std::int64_t saved_step = -1;
    b.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) saved[name] = t.clone();
        else saved_step = t[0];
    });
    CHECK(saved_step == 2);
    toy mc;
    mc.a.value.assign(mb.a.value);
    mc.b.value.assign(mb.b.value);
    sgd<double> c(mc, {.lr = 0.1, .momentum = 0.9, .dampening = 0.5});
    c.for_each_state([&](const std::string& name, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) t.assign(saved.at(name));
        else t[0] = saved_step;
    });
    CHECK(c.step_count() == 2);
    set_grads(ma, 2);
    set_grads(mc, 2);
    a.step();
    c.step();
    CHECK(mc.a.value[0] == doctest::Approx(ma.a.value[0]).epsilon(1e-15));
    CHECK(mc.a.value[0] == doctest::Approx(0.8595));  // the dampening run above
    for (int j = 0; j < 3; ++j) CHECK(mc.b.value[j] == doctest::Approx(ma.b.value[j]).epsilon(1e-15));

    // a state tensor of the wrong shape is caught at step()
    c.for_each_state([&](const std::string& name, auto& t) {
        if (name == "b.momentum_buffer") t = std::decay_t<decltype(t)>::zeros(shape_t{2});
    });
    CHECK_THROWS_AS(c.step(), ssl::shape_error);
}

TEST_CASE("sgd: attach errors and gradient shape checks") {
    toy m;
    sgd<double> opt(sgd_config{.lr = 0.1});
    opt.attach(m);
    CHECK(opt.size() == 2);
    CHECK(opt.parameters()[1].name == "b");
    CHECK(opt.parameters()[1].param == &m.b);
    CHECK_THROWS_AS(opt.add_parameter("again", m.a), ssl::value_error);  // same parameter twice
    parameter<double> extra(shape_t{2}, param_role::weight);
    CHECK_THROWS_AS(opt.add_parameter("a", extra), ssl::value_error);  // same name twice
    opt.add_parameter("extra", extra);
    CHECK(opt.size() == 3);
    m.b.grad = tensor<double>::zeros(shape_t{4});
    CHECK_THROWS_AS(opt.step(), ssl::shape_error);
}

TEST_CASE("sgd: set_lr, lr() and config") {
    toy m;
    sgd<double> opt(m, {.lr = 0.1, .momentum = 0.5});
    CHECK(opt.lr() == 0.1);
    opt.set_lr(0.2);
    CHECK(opt.lr() == 0.2);
    CHECK(opt.config().lr == 0.2);
    CHECK(opt.config().momentum == 0.5);
    CHECK_THROWS_AS(opt.set_lr(-1), ssl::value_error);
    set_grads(m, 0);
    opt.step();
    CHECK(m.a.value[0] == doctest::Approx(1 - 0.2 * 0.5));
}

TEST_CASE("sgd: bad configs throw value_error naming the field and the value") {
    auto has = [](const std::string& msg, const char* s) { return msg.find(s) != std::string::npos; };
    std::string msg = message_of_bad({.lr = -0.1});
    CHECK(has(msg, "lr"));
    CHECK(has(msg, "-0.1"));
    msg = message_of_bad({.lr = 0.1, .momentum = 1.0});
    CHECK(has(msg, "momentum"));
    CHECK(has(msg, "1"));
    msg = message_of_bad({.lr = 0.1, .momentum = -0.5});
    CHECK(has(msg, "momentum"));
    CHECK(has(msg, "-0.5"));
    msg = message_of_bad({.lr = 0.1, .dampening = 1.5});
    CHECK(has(msg, "dampening"));
    msg = message_of_bad({.lr = 0.1, .weight_decay = -1e-4});
    CHECK(has(msg, "weight_decay"));
    msg = message_of_bad({.lr = 0.1, .nesterov = true});  // Nesterov without momentum
    CHECK(has(msg, "momentum"));
    CHECK(has(msg, "nesterov"));
    msg = message_of_bad({.lr = 0.1, .momentum = 0.9, .dampening = 0.1, .nesterov = true});
    CHECK(has(msg, "dampening"));
    CHECK(has(msg, "nesterov"));
    CHECK(message_of_bad({.lr = 0.1, .momentum = 0.9, .nesterov = true}) == "(no value_error)");
}

TEST_CASE("sgd: converges on ||w - t||^2") {
    const double target[3] = {1.5, -0.5, 2.0};
    for (sgd_config c : {sgd_config{.lr = 0.1}, sgd_config{.lr = 0.05, .momentum = 0.9},
                         sgd_config{.lr = 0.05, .momentum = 0.9, .nesterov = true},
                         sgd_config{.lr = 0.05, .momentum = 0.9, .dampening = 0.3}}) {
        toy m;
        sgd<double> opt(m, c);
        for (int it = 0; it < 500; ++it) {
            opt.zero_grad();
            m.a.grad[0] = 2 * (m.a.value[0] - 1.0);
            for (int j = 0; j < 3; ++j) m.b.grad[j] = 2 * (m.b.value[j] - target[j]);
            opt.step();
        }
        CAPTURE(c.momentum);
        CAPTURE(c.nesterov);
        CHECK(m.a.value[0] == doctest::Approx(1.0).epsilon(1e-8));
        for (int j = 0; j < 3; ++j) CHECK(m.b.value[j] == doctest::Approx(target[j]).epsilon(1e-8));
    }
}

TEST_CASE("sgd<float> on a linear layer") {
    ssl::nn::linear<float> fc({2, 1});
    sgd<float> opt(fc, {.lr = 0.5f}, "fc");
    REQUIRE(opt.size() == 2);
    CHECK(opt.parameters()[0].name == "fc.weight");
    CHECK(opt.parameters()[1].name == "fc.bias");
    fc.weight().value.assign(tensor<float>::from({1, 2}, {1.f, 2.f}));
    fc.bias().value[0] = 0.f;
    fc.weight().grad.assign(tensor<float>::from({1, 2}, {0.5f, -1.f}));
    fc.bias().grad[0] = 2.f;
    opt.step();
    CHECK(fc.weight().value[0] == doctest::Approx(0.75f));
    CHECK(fc.weight().value[1] == doctest::Approx(2.5f));
    CHECK(fc.bias().value[0] == doctest::Approx(-1.f));
    static_assert(ssl::optim::optimizer<sgd<float>>);
}

TEST_CASE("sgd: a parameter spanning several update chunks is updated everywhere") {
    // 3 chunks + 5 elements; every element follows the scalar Nesterov + decay recursion on its own
    const std::size_t n = 3 * ssl::optim::detail::chunk_elements + 5;
    parameter<double> big(shape_t{n}, param_role::weight);
    for (std::size_t i = 0; i < n; ++i) {
        big.value[i] = std::sin(0.01 * static_cast<double>(i));
        big.grad[i] = std::cos(0.02 * static_cast<double>(i));
    }
    const tensor<double> w0 = big.value.clone();
    sgd<double> opt(sgd_config{.lr = 0.1, .momentum = 0.9, .nesterov = true, .weight_decay = 0.01});
    opt.add_parameter("big", big);
    opt.step();
    opt.step();
    for (std::size_t i : {std::size_t{0}, std::size_t{4095}, std::size_t{4096}, std::size_t{8200}, n - 1}) {
        double w = w0[i], b = 0;
        const double g = big.grad[i];
        for (int k = 0; k < 2; ++k) {
            const double d = g + 0.01 * w;
            b = k == 0 ? d : 0.9 * b + d;
            w -= 0.1 * (d + 0.9 * b);
        }
        CAPTURE(i);
        CHECK(big.value[i] == doctest::Approx(w).epsilon(1e-13));
    }
}

}  // namespace test_sgd
