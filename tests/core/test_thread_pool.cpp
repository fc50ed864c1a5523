#include <doctest/doctest.h>

#include <ssl/core/thread_pool.hpp>

#include <atomic>
#include <chrono>
#include <stdexcept>
#include <thread>
#include <vector>

namespace test_thread_pool {  // each file in its own namespace: an area builds as one unity translation unit

TEST_CASE("thread pool: every index runs exactly once") {
    for (std::size_t n : {0u, 1u, 2u, 7u, 1000u}) {
        std::vector<std::atomic<int>> hits(n);
        ssl::parallel_for(n, [&](std::size_t i, std::size_t w) {
            CHECK(w < ssl::num_threads());
            hits[i]++;
        });
        for (auto& h : hits) CHECK(h.load() == 1);
    }
}

TEST_CASE("thread pool: exceptions reach the caller, the pool keeps working") {
    CHECK_THROWS_AS(ssl::parallel_for(10, [](std::size_t i, std::size_t) {
                        if (i == 3) throw std::runtime_error("task 3");
                    }),
                    std::runtime_error);
    std::atomic<int> sum{0};
    ssl::parallel_for(100, [&](std::size_t i, std::size_t) { sum += static_cast<int>(i); });
    CHECK(sum.load() == 4950);
}

TEST_CASE("thread pool: nested calls run serially, resize works") {
    std::atomic<int> count{0};
    ssl::parallel_for(4, [&](std::size_t, std::size_t) {
        ssl::parallel_for(5, [&](std::size_t, std::size_t w) {
            CHECK(w == 0);
            count++;
        });
    });
    CHECK(count.load() == 20);
    const auto n = ssl::num_threads();
    ssl::set_num_threads(3);
    CHECK(ssl::num_threads() == 3);
    std::atomic<int> c2{0};
    ssl::parallel_for(50, [&](std::size_t, std::size_t) { c2++; });
    CHECK(c2.load() == 50);
    CHECK_THROWS_AS(ssl::set_num_threads(0), ssl::value_error);
    ssl::set_num_threads(n);
    CHECK(ssl::num_threads() == n);
}

TEST_CASE("thread pool: the schedule is static (task -> worker is fixed for a thread count)") {
    std::vector<std::size_t> first(64), second(64);
    ssl::parallel_for(64, [&](std::size_t i, std::size_t w) { first[i] = w; });
    ssl::parallel_for(64, [&](std::size_t i, std::size_t w) { second[i] = w; });
    CHECK(first == second);
    for (std::size_t i = 1; i < 64; ++i) CHECK(first[i] >= first[i - 1]);  // contiguous blocks
}

TEST_CASE("thread pool: resizing after jobs have run starts workers that wait for the next job") {
    const auto n = ssl::num_threads();
    for (int round = 0; round < 5; ++round) {
        std::atomic<int> c{0};
        ssl::parallel_for(8, [&](std::size_t, std::size_t) { c++; });
        ssl::set_num_threads(round % 2 ? 2 : 3);
        ssl::parallel_for(8, [&](std::size_t, std::size_t) { c++; });
        CHECK(c.load() == 16);
    }
    ssl::set_num_threads(n);
}

TEST_CASE("thread pool: spinning and sleeping workers both take every job") {
    using namespace std::chrono_literals;
    const auto n = ssl::num_threads();
    const auto spin = ssl::spin_wait();
    CHECK(spin == 200us);  // the default
    CHECK_THROWS_AS(ssl::set_spin_wait(-1us), ssl::value_error);
    CHECK_THROWS_AS(ssl::set_spin_wait(2s), ssl::value_error);  // at most 1 s
    // 2 threads spin (where the machine has 2 hardware threads); 5 are more
    // than this machine's and CI's cores: that pool must not spin
    for (const std::size_t threads : {2u, 5u}) {
        ssl::set_num_threads(threads);
        for (const auto s : {0us, 1us, 200us, 20000us}) {
            CAPTURE(threads);
            CAPTURE(s.count());
            ssl::set_spin_wait(s);
            CHECK(ssl::spin_wait() == s);
            long long expected = 0;
            std::atomic<long long> sum{0};
            for (int round = 0; round < 200; ++round) {
                // every 50th round the workers have been idle longer than 1
                // and 200 us: they sleep and must be woken; otherwise they spin
                if (round % 50 == 49) std::this_thread::sleep_for(2ms);
                const std::size_t tasks = 1 + round % 9;
                ssl::parallel_for(tasks, [&](std::size_t i, std::size_t w) {
                    CHECK(w < threads);
                    sum += static_cast<long long>(i + 1);
                });
                expected += static_cast<long long>(tasks * (tasks + 1) / 2);
            }
            CHECK(sum.load() == expected);
            CHECK_THROWS_AS(ssl::parallel_for(8, [](std::size_t i, std::size_t) {
                                if (i == 7) throw std::runtime_error("task 7");
                            }),
                            std::runtime_error);
            // resizing stops workers that may be spinning
            ssl::set_num_threads(3);
            std::atomic<int> c{0};
            ssl::parallel_for(30, [&](std::size_t, std::size_t) { c++; });
            CHECK(c.load() == 30);
            ssl::set_num_threads(threads);
        }
    }
    // a spinning worker sees the pool stop at once, not at the end of its spin
    ssl::set_num_threads(2);
    ssl::set_spin_wait(1s);
    ssl::parallel_for(4, [](std::size_t, std::size_t) {});
    const auto t0 = std::chrono::steady_clock::now();
    ssl::set_num_threads(2);
    CHECK(std::chrono::steady_clock::now() - t0 < 500ms);
    ssl::set_spin_wait(spin);
    ssl::set_num_threads(n);
}

}  // namespace test_thread_pool
