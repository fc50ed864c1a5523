#include <doctest/doctest.h>

#include <cmath>
#include <string>
#include <vector>

#include <ssl/optim.hpp>

namespace test_schedule {  // each file in its own namespace: an area builds as one unity translation unit

using namespace ssl::optim;

namespace {

template <class F>
std::string message_of(F&& make) {
    try {
        make();
    } catch (const ssl::value_error& e) {
        return e.what();
    }
    return "(no value_error)";
}

bool has(const std::string& msg, const char* s) { return msg.find(s) != std::string::npos; }

}  // namespace

TEST_CASE("warmup_cosine: warmup from 0, cosine to 0") {
    // base 1, warmup 10, total 110: cosine over steps 10..110 (100 steps)
    const warmup_cosine s(1.0, 10, 110);
    CHECK(s(0) == 0.0);
    CHECK(s(5) == doctest::Approx(0.5).epsilon(1e-15));   // mid-warmup
    CHECK(s(9) == doctest::Approx(0.9).epsilon(1e-15));
    CHECK(s(10) == 1.0);                                   // end of warmup: base, cos(0) = 1
    CHECK(s(35) == doctest::Approx(0.5 * (1 + std::sqrt(0.5))).epsilon(1e-14));  // a quarter: (1 + cos(pi/4)) / 2
    CHECK(s(60) == 0.5);                                   // the midpoint: exactly (base + final) / 2
    CHECK(s(85) == doctest::Approx(0.5 * (1 - std::sqrt(0.5))).epsilon(1e-14));
    CHECK(s(109) > 0.0);
    CHECK(s(109) < 1e-3);
    CHECK(s(110) == 0.0);                                  // the end
    CHECK(s(1000) == 0.0);                                 // beyond
    // monotone: up during warmup, down afterwards
    for (std::size_t k = 0; k < 10; ++k) CHECK(s(k) < s(k + 1));
    for (std::size_t k = 10; k < 110; ++k) CHECK(s(k) > s(k + 1));
}

TEST_CASE("warmup_cosine: nonzero warmup start and final lr") {
    // base 0.5, warmup 4 from 0.1, cosine over steps 4..24 down to 0.05
    const warmup_cosine s(0.5, 4, 24, 0.05, 0.1);
    CHECK(s(0) == doctest::Approx(0.1).epsilon(1e-15));
    CHECK(s(2) == doctest::Approx(0.3).epsilon(1e-15));  // (0.1 + 0.5) / 2
    CHECK(s(3) == doctest::Approx(0.4).epsilon(1e-15));
    CHECK(s(4) == doctest::Approx(0.5).epsilon(1e-15));
    CHECK(s(14) == doctest::Approx(0.275).epsilon(1e-15));  // (0.5 + 0.05) / 2
    CHECK(s(24) == 0.05);
    CHECK(s(25) == 0.05);
    CHECK(s.base_lr() == 0.5);
    CHECK(s.final_lr() == 0.05);
    CHECK(s.warmup_start_lr() == 0.1);
    CHECK(s.warmup_steps() == 4);
    CHECK(s.total_steps() == 24);
}

TEST_CASE("warmup_cosine: no warmup starts at base; warmup == total ends at final") {
    const warmup_cosine s(2.0, 0, 10, 1.0);
    CHECK(s(0) == 2.0);
    CHECK(s(5) == doctest::Approx(1.5).epsilon(1e-15));
    CHECK(s(10) == 1.0);
    const warmup_cosine w(1.0, 10, 10);
    CHECK(w(5) == doctest::Approx(0.5).epsilon(1e-15));
    CHECK(w(10) == 0.0);
}

TEST_CASE("warmup_cosine: bad arguments") {
    std::string msg = message_of([] { warmup_cosine(1.0, 20, 10); });
    CHECK(has(msg, "warmup_steps"));
    CHECK(has(msg, "20"));
    CHECK(has(msg, "total_steps"));
    msg = message_of([] { warmup_cosine(1.0, 0, 0); });
    CHECK(has(msg, "total_steps"));
    msg = message_of([] { warmup_cosine(-1.0, 0, 10); });
    CHECK(has(msg, "base_lr"));
    CHECK(has(msg, "-1"));
    msg = message_of([] { warmup_cosine(1.0, 0, 10, -0.5); });
    CHECK(has(msg, "final_lr"));
    msg = message_of([] { warmup_cosine(1.0, 2, 10, 0, -0.1); });
    CHECK(has(msg, "warmup_start_lr"));
    msg = message_of([] { warmup_cosine(std::nan(""), 2, 10); });
    CHECK(has(msg, "base_lr"));
    CHECK(message_of([] { warmup_cosine(1.0, 10, 10); }) == "(no value_error)");
}

TEST_CASE("step_decay: MultiStepLR milestones") {
    // base 0.1, gamma 0.1 at steps 30 and 80
    const step_decay s(0.1, {30, 80}, 0.1);
    CHECK(s(0) == 0.1);
    CHECK(s(29) == 0.1);
    CHECK(s(30) == doctest::Approx(0.01).epsilon(1e-15));  // decayed at the milestone itself
    CHECK(s(79) == doctest::Approx(0.01).epsilon(1e-15));
    CHECK(s(80) == doctest::Approx(0.001).epsilon(1e-15));
    CHECK(s(10000) == doctest::Approx(0.001).epsilon(1e-15));
    const step_decay half(1.0, {1, 2, 3}, 0.5);
    CHECK(half(0) == 1.0);
    CHECK(half(1) == 0.5);
    CHECK(half(2) == 0.25);
    CHECK(half(3) == 0.125);
    const step_decay none(0.3, {});
    CHECK(none(12345) == 0.3);
    CHECK(s.milestones() == std::vector<std::size_t>{30, 80});
    CHECK(s.gamma() == 0.1);
}

TEST_CASE("step_decay: bad arguments") {
    std::string msg = message_of([] { step_decay(0.1, {80, 30}, 0.1); });
    CHECK(has(msg, "milestones"));
    CHECK(has(msg, "80"));
    CHECK(has(msg, "30"));
    msg = message_of([] { step_decay(0.1, {30, 30}, 0.1); });
    CHECK(has(msg, "milestones"));
    msg = message_of([] { step_decay(0.1, {30}, 0.0); });
    CHECK(has(msg, "gamma"));
    msg = message_of([] { step_decay(0.1, {30}, -0.5); });
    CHECK(has(msg, "gamma"));
    CHECK(has(msg, "-0.5"));
    msg = message_of([] { step_decay(-0.1, {30}, 0.1); });
    CHECK(has(msg, "base_lr"));
}

TEST_CASE("constant schedule and driving an optimizer") {
    const constant c(0.3);
    CHECK(c(0) == 0.3);
    CHECK(c(1000000) == 0.3);
    CHECK(has(message_of([] { constant(-2); }), "lr"));
    static_assert(lr_schedule<warmup_cosine>);
    static_assert(lr_schedule<step_decay>);
    static_assert(lr_schedule<constant>);

    // set_lr(schedule(step)) before each step
    ssl::parameter<double> p(ssl::shape_t{1}, ssl::param_role::weight);
    sgd<double> opt(sgd_config{.lr = 0});
    opt.add_parameter("p", p);
    const step_decay s(1.0, {1}, 0.5);
    p.grad[0] = 1;
    for (std::size_t k = 0; k < 2; ++k) {
        opt.set_lr(s(k));
        opt.step();
    }
    CHECK(opt.lr() == 0.5);
    CHECK(p.value[0] == doctest::Approx(-1.5));  // 0 - 1 - 0.5
}

}  // namespace test_schedule
