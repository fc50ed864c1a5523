// What keeps a run's files trustworthy when it fails: no checkpoint is
// written with a nan or infinite tensor or after a non-finite loss, the
// checkpointer says what it wrote, and a resumed run's metrics.csv drops the
// rows after its checkpoint (a killed run logged them, the resumed run runs
// them again).
#include <doctest/doctest.h>

#include <ssl/io/checkpoint.hpp>
#include <ssl/io/metrics_log.hpp>
#include <ssl/nn/parameter.hpp>
#include <ssl/train/checkpointer.hpp>
#include <ssl/train/metrics_csv.hpp>

#include "temp_files.hpp"

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <string>

namespace test_run_safety {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;
using namespace ssl::train;

namespace {

using ssl_test::read_text;
using ssl_test::temp_dir;

void write_text(const fs::path& p, const std::string& s) {
    std::ofstream out(p, std::ios::binary);
    out << s;
}

/// A parameter and a buffer, like a model's state.
struct toy_state {
    ssl::parameter<float> w{ssl::shape_t{3}, ssl::param_role::weight};
    ssl::tensor<float> running = ssl::tensor<float>::zeros(ssl::shape_t{2});
    template <class F>
    void for_each_parameter(F&& f, const std::string& p) {
        f(ssl::join_name(p, "w"), w);
    }
    template <class F>
    void for_each_buffer(F&& f, const std::string& p) {
        f(ssl::join_name(p, "running"), running);
    }
};

step_report step(std::size_t s, double loss) {
    return {.epoch = 0, .in_epoch = s, .step = s, .epoch_steps = s, .loss = loss, .lr = 0.5,
            .images_per_second = 100};
}

}  // namespace

TEST_CASE("first_non_finite: names the first parameter or buffer holding nan or inf") {
    toy_state st;
    CHECK(first_non_finite(st).empty());
    st.w.value[1] = 1e30f;  // huge but finite
    CHECK(first_non_finite(st).empty());
    st.running[1] = std::numeric_limits<float>::infinity();
    CHECK(first_non_finite(st) == "tensor 'running' holds inf");
    st.w.value[2] = std::nanf("");
    CHECK(first_non_finite(st) == "tensor 'w' holds nan");
}

TEST_CASE("checkpointer: no checkpoint after a non-finite loss; saved() is what was written or resumed") {
    temp_dir d("safety_ckpt");
    toy_state st;
    checkpointer ck(d.path / "run");
    std::size_t writes = 0;
    ck.run_start({.write_state = [&](const fs::path& p, const metadata& meta) {
        ++writes;
        ssl::save_checkpoint(p, st, meta);
    }});
    CHECK_FALSE(ck.saved().has_value());
    ck.step_end(step(1, 0.5));
    ck.epoch_end({.epoch = 0, .in_epoch = 1, .complete = true, .position = {1, 0, 1}});
    CHECK(writes == 2);
    REQUIRE(ck.saved().has_value());
    CHECK(ck.saved()->global_step == 1);
    ck.step_end(step(2, std::numeric_limits<double>::infinity()));
    CHECK_THROWS_WITH_AS(ck.interrupted({1, 1, 2}),
                         doctest::Contains("not writing a checkpoint after step 2: its loss is inf"), ssl::error);
    CHECK(writes == 2);
    CHECK(ck.saved()->global_step == 1);
    ck.resumed(ck.last(), {1, 0, 7});
    CHECK(ck.saved()->global_step == 7);
}

TEST_CASE("truncate_csv_log: keeps the header and the rows up to a step; drops a cut row") {
    temp_dir d("truncate_csv");
    fs::create_directories(d.path);
    const fs::path p = d.path / "metrics.csv";
    write_text(p, "epoch,step,loss\n1,1,0.5\n1,2,0.4\n2,3,0.3\n2,4,0.2\n2,5,0.");
    ssl::io::truncate_csv_log(p, "step", 3);
    CHECK(read_text(p) == "epoch,step,loss\n1,1,0.5\n1,2,0.4\n2,3,0.3\n");
    ssl::io::truncate_csv_log(p, "step", 0);
    CHECK(read_text(p) == "epoch,step,loss\n");
    ssl::io::truncate_csv_log(d.path / "none.csv", "step", 3);  // a missing file stays missing
    CHECK_FALSE(fs::exists(d.path / "none.csv"));
    CHECK_THROWS_WITH_AS(ssl::io::truncate_csv_log(p, "nope", 3), doctest::Contains("no column 'nope'"),
                         ssl::value_error);
}

TEST_CASE("csv_log: whole numbers in full, so a long run's steps stay exact for truncate_csv_log") {
    temp_dir d("csv_digits");
    fs::create_directories(d.path);
    const fs::path p = d.path / "metrics.csv";
    {
        ssl::io::csv_log log(p, {"step", "loss"});
        log.row({1234567, 0.123456789});
        log.row({1234568, 2});
    }
    CHECK(read_text(p) == "step,loss\n1234567,0.123457\n1234568,2\n");
    ssl::io::truncate_csv_log(p, "step", 1234567);
    CHECK(read_text(p) == "step,loss\n1234567,0.123457\n");
}

TEST_CASE("metrics_csv: resumed at step 2 after a kill at step 4, the rows of steps 3 and 4 are not repeated") {
    temp_dir d("resume_csv");
    const fs::path p = d.path / "metrics.csv";
    {
        metrics_csv csv(p);
        csv.run_start({.resumed = false});
        for (std::size_t s = 1; s <= 4; ++s) csv.step_end(step(s, 1));
    }
    {
        metrics_csv csv(p);
        csv.run_start({.resumed = true, .start = {0, 2, 2}});
        for (std::size_t s = 3; s <= 5; ++s) csv.step_end(step(s, 2));
    }
    CHECK(read_text(p) == "epoch,step,loss,lr,images_per_s\n1,1,1,0.5,100\n1,2,1,0.5,100\n1,3,2,0.5,100\n"
                          "1,4,2,0.5,100\n1,5,2,0.5,100\n");
}

}  // namespace test_run_safety
