// A chore for the tests of interrupted runs: sends this process SIGINT (as
// Ctrl-C would) at the end of step `at`, so the run stops after that step,
// inside its epoch.
#pragma once
#include <csignal>
#include <cstddef>

#include <ssl/train/chore.hpp>

namespace ssl_test {

struct sigint_at final : ssl::train::chore {
    std::size_t at;
    explicit sigint_at(std::size_t step) : at(step) {}
    void step_end(const ssl::train::step_report& r) override {
        if (r.step == at) std::raise(SIGINT);
    }
};

}  // namespace ssl_test
