// The driver the optimizers share (optim/optimizer.hpp): state kinds and
// names, zero_state by prefix, the checks before a step, and a new update
// rule written on the driver alone (sign descent with a remembered sign).
#include <doctest/doctest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <ssl/optim.hpp>

namespace test_optimizer {  // each file in its own namespace: an area builds as one unity translation unit

using ssl::param_role;
using ssl::parameter;
using ssl::shape_t;
using ssl::tensor;
using namespace ssl::optim;

namespace {

// head.w (2,), header.w (1,), body (3,): "head" must not catch "header".
struct net {
    parameter<double> head{shape_t{2}, param_role::weight};
    parameter<double> header{shape_t{1}, param_role::weight};
    parameter<double> body{shape_t{3}, param_role::bias};
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(ssl::join_name(prefix, "head.w"), head);
        f(ssl::join_name(prefix, "header.w"), header);
        f(ssl::join_name(prefix, "body"), body);
    }
    void set_grads(double g) {
        for (auto* p : {&head, &header, &body}) p->grad.fill(g);
    }
};

std::vector<std::string> state_names(auto& opt) {
    std::vector<std::string> names;
    opt.for_each_state([&](const std::string& n, auto&) { names.push_back(n); });
    return names;
}

/// Every state tensor's values, in for_each_state order (the step counter excluded).
std::vector<double> state_values(auto& opt) {
    std::vector<double> v;
    opt.for_each_state([&](const std::string&, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) v.insert(v.end(), t.begin(), t.end());
    });
    return v;
}

// A rule written on the driver alone: w -= lr * sign(grad), remembering the sign.
struct sign_config {
    double lr = 0.1;
};

template <class T>
class sign_descent : public optimizer_driver<sign_descent<T>, sign_config, T> {
    using driver = optimizer_driver<sign_descent<T>, sign_config, T>;
    friend driver;

public:
    explicit sign_descent(const sign_config& c) : driver(c, "sign_config", {"last_sign"}) {}

private:
    auto rule() const {
        const T lr = static_cast<T>(this->cfg_.lr);
        return [=](const parameter<T>&) {
            return [=](update_chunk<T>& c) {
                auto last = c.state(0);
                last = c.grad.array().sign().matrix();
                c.w -= lr * last;
            };
        };
    }
};

}  // namespace

TEST_CASE("optimizers: state kinds and checkpoint names, as the checkpoints hold them") {
    net m;
    sgd<double> s(m, {.lr = 0.1, .momentum = 0.9}, "net");
    CHECK(s.state_kinds() == std::vector<std::string>{"momentum_buffer"});
    CHECK(state_names(s) == std::vector<std::string>{"step", "net.head.w.momentum_buffer",
                                                     "net.header.w.momentum_buffer", "net.body.momentum_buffer"});
    net m2;
    sgd<double> plain(m2, {.lr = 0.1});
    CHECK(plain.state_kinds().empty());
    CHECK(state_names(plain) == std::vector<std::string>{"step"});
    net m3;
    lars<double> l(m3, {.lr = 0.1});
    CHECK(state_names(l) == std::vector<std::string>{"step", "head.w.momentum_buffer", "header.w.momentum_buffer",
                                                     "body.momentum_buffer"});
    net m4;
    adamw<double> a(m4, {.lr = 0.1});
    CHECK(state_names(a) == std::vector<std::string>{"step", "head.w.exp_avg", "head.w.exp_avg_sq", "header.w.exp_avg",
                                                     "header.w.exp_avg_sq", "body.exp_avg", "body.exp_avg_sq"});
}

TEST_CASE("optimizers: zero_state clears the state of re-initialised parameters only") {
    net m;
    adam<double> a(m, {.lr = 0.1});
    CHECK_FALSE(a.has_state());
    a.zero_state({});  // nothing to clear: the state is not created
    CHECK_FALSE(a.has_state());
    m.set_grads(1);
    a.step();
    a.step();
    a.zero_state({"head"});
    CHECK(a.step_count() == 2);
    std::vector<double> got;
    a.for_each_state([&](const std::string& n, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<double>>) {
            CAPTURE(n);
            const bool cleared = n.starts_with("head.");
            for (double v : t) CHECK((v == 0) == cleared);
        }
    });
    net m2;
    sgd<double> s(m2, {.lr = 0.1, .momentum = 0.9});
    m2.set_grads(1);
    s.step();
    s.zero_state({"head.w", "body"});
    CHECK(state_values(s) == std::vector<double>{0, 0, 1, 0, 0, 0});
}

TEST_CASE("optimizer_driver: a new rule gets attach, lr, state, names, checks and chunking from the driver") {
    static_assert(ssl::optim::optimizer<sign_descent<double>>);
    net m;
    sign_descent<double> opt(sign_config{.lr = 0.5});
    opt.attach(m, "n");
    CHECK(opt.lr() == 0.5);
    CHECK_THROWS_WITH_AS(opt.set_lr(-1), doctest::Contains("sign_config.lr"), ssl::value_error);
    opt.set_lr(0.25);
    CHECK(opt.config().lr == 0.25);
    m.head.grad.assign(tensor<double>::from({2}, {3, -0.5}));
    m.header.grad.fill(0);
    m.body.grad.fill(-2);
    opt.step();
    CHECK(opt.step_count() == 1);
    CHECK(m.head.value[0] == -0.25);
    CHECK(m.head.value[1] == 0.25);
    CHECK(m.header.value[0] == 0);
    CHECK(state_names(opt) == std::vector<std::string>{"step", "n.head.w.last_sign", "n.header.w.last_sign",
                                                       "n.body.last_sign"});
    CHECK(state_values(opt) == std::vector<double>{1, -1, 0, -1, -1, -1});
    opt.zero_grad();
    CHECK(m.body.grad[0] == 0);

    // the driver's checks: a state of the wrong shape (a bad checkpoint), a missing gradient, the counter
    opt.for_each_state([](const std::string& n, auto& t) {
        if (n == "n.body.last_sign") t = std::decay_t<decltype(t)>::zeros(shape_t{2});
    });
    CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("state \"n.body.last_sign\" has shape"), ssl::shape_error);
    opt.for_each_state([](const std::string& n, auto& t) {
        if (n == "n.body.last_sign") t = std::decay_t<decltype(t)>::zeros(shape_t{3});
    });
    opt.step();
    m.header.grad = tensor<double>::zeros(shape_t{4});
    CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("parameter \"n.header.w\" has a gradient of shape"),
                         ssl::shape_error);
    m.header.grad = tensor<double>::zeros(shape_t{1});
    opt.for_each_state([](const std::string& n, auto& t) {
        if constexpr (std::is_same_v<std::decay_t<decltype(t)>, tensor<std::int64_t>>) t[0] = -3;
    });
    CHECK_THROWS_WITH_AS(opt.step(), doctest::Contains("\"step\" state is negative"), ssl::value_error);

    // a parameter over several chunks: every element's state and update
    const std::size_t n = 2 * ssl::optim::detail::chunk_elements + 7;
    parameter<double> big(shape_t{n}, param_role::weight);
    for (std::size_t i = 0; i < n; ++i) big.grad[i] = i % 3 == 0 ? -1.0 : 2.0;
    sign_descent<double> o2(sign_config{.lr = 1});
    o2.add_parameter("big", big);
    o2.step();
    for (std::size_t i : {std::size_t{0}, std::size_t{1}, ssl::optim::detail::chunk_elements, n - 1}) {
        CAPTURE(i);
        CHECK(big.value[i] == (i % 3 == 0 ? 1.0 : -1.0));
    }
    std::vector<double> signs(n);
    for (std::size_t i = 0; i < n; ++i) signs[i] = i % 3 == 0 ? -1.0 : 1.0;
    CHECK(state_values(o2) == signs);
}

}  // namespace test_optimizer
