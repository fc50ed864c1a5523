// The trainer's chores one by one (train/*.hpp), and the points the loop
// calls them at: the CSV log starts over or continues at the resume point,
// the checkpointer writes atomically and records the position, the progress
// line's format off a terminal, Ctrl-C, the plot, the chore list; then a run
// through the trainer with a recording chore, and a run without chores.
#include <doctest/doctest.h>

#include <ssl/data/synthetic.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>
#include <ssl/train/chores.hpp>

#include "temp_files.hpp"

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <unistd.h>
#include <vector>

namespace test_trainer_chores {  // each file in its own namespace: an area builds as one unity translation unit

namespace fs = std::filesystem;
using namespace ssl::train;

namespace {

using ssl_test::read_text;
using ssl_test::temp_dir;

std::vector<std::string> files_in(const fs::path& d) {
    std::vector<std::string> v;
    for (const auto& e : fs::directory_iterator(d)) v.push_back(e.path().filename().string());
    std::sort(v.begin(), v.end());
    return v;
}

/// Everything written to a temporary FILE*.
struct captured_file {
    std::FILE* f = std::tmpfile();
    ~captured_file() { std::fclose(f); }
    std::string text() const {
        std::fflush(f);
        std::rewind(f);
        std::string s;
        for (int c; (c = std::fgetc(f)) != EOF;) s += static_cast<char>(c);
        return s;
    }
};

step_report step(std::size_t epoch, std::size_t in_epoch, std::size_t global, double loss) {
    return {.epoch = epoch, .in_epoch = in_epoch, .step = global, .epoch_steps = in_epoch, .loss = loss, .lr = 0.5,
            .images_per_second = 100, .epoch_seconds = 2.0 * static_cast<double>(in_epoch)};
}

/// One parameter, no buffers: the smallest module a checkpoint can hold.
struct toy_state {
    ssl::parameter<float> w{ssl::shape_t{3}, ssl::param_role::weight};
    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(ssl::join_name(prefix, "w"), w);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
};

/// Records the points it is called at.
struct recorder final : chore {
    std::vector<std::string>* log;
    explicit recorder(std::vector<std::string>* l) : log(l) {}
    void resumed(const fs::path&, const run_position& at) override {
        log->push_back(ssl::detail::cat("resumed ", at.epoch, ".", at.step_in_epoch));
    }
    void run_start(const run_info& i) override {
        log->push_back(ssl::detail::cat("run_start ", i.epochs, " ", i.steps_per_epoch, " ", i.stop_at,
                                        i.resumed ? " resumed" : ""));
    }
    void step_end(const step_report& r) override {
        log->push_back(ssl::detail::cat("step ", r.epoch, ".", r.in_epoch, " #", r.step));
    }
    void epoch_end(const epoch_report& r) override {
        log->push_back(ssl::detail::cat("epoch_end ", r.epoch, r.complete ? " complete" : " cut", " -> ",
                                        r.position.epoch, ".", r.position.step_in_epoch, " #", r.position.global_step));
    }
    void evaluated(const evaluation_report& r) override {
        log->push_back(ssl::detail::cat("evaluated ", r.epoch, " ", r.results.size()));
    }
    void interrupted(const run_position& at) override {
        log->push_back(ssl::detail::cat("interrupted ", at.epoch, ".", at.step_in_epoch));
    }
    void run_end() override { log->push_back("run_end"); }
    void run_failed() override { log->push_back("run_failed"); }
};

const ssl::resnet_options small_net{.in_channels = 1, .width = 8, .stem = ssl::stem::cifar, .seed = 1};

ssl::simclr<>::config small_simclr() {
    auto c = ssl::simclr_config(small_net, 16, 1);
    c.head = {64, 16, true};
    return c;
}

ssl::data::image_dataset small_set() {
    return ssl::data::synthetic({.size = 128, .classes = 4, .channels = 1, .height = 16, .width = 16, .noise = 0.2,
                                 .seed = 1})
        .to_dataset();
}

}  // namespace

TEST_CASE("metrics_csv: a fresh run starts the file over, a resumed run continues at its step") {
    temp_dir d("csv");
    const fs::path path = d.path / "sub" / "metrics.csv";
    {
        metrics_csv csv(path);
        csv.run_start({.resumed = false});  // creates the directory
        for (std::size_t s = 1; s <= 3; ++s) csv.step_end(step(0, s, s, 1.0 / static_cast<double>(s)));
    }
    CHECK(read_text(path) == "epoch,step,loss,lr,images_per_s\n1,1,1,0.5,100\n1,2,0.5,0.5,100\n1,3,0.333333,0.5,100\n");
    {
        // resumed at step 3: no second header, the rows go on
        metrics_csv csv(path);
        csv.run_start({.resumed = true, .start = {0, 3, 3}});
        csv.step_end(step(0, 4, 4, 0.25));
        csv.step_end(step(1, 1, 5, 0.2));
    }
    CHECK(read_text(path) ==
          "epoch,step,loss,lr,images_per_s\n1,1,1,0.5,100\n1,2,0.5,0.5,100\n1,3,0.333333,0.5,100\n"
          "1,4,0.25,0.5,100\n2,5,0.2,0.5,100\n");
    {
        // a fresh run truncates
        metrics_csv csv(path);
        csv.run_start({.resumed = false});
        csv.step_end(step(0, 1, 1, std::nan("")));
    }
    CHECK(read_text(path) == "epoch,step,loss,lr,images_per_s\n1,1,nan,0.5,100\n");
    {
        // resumed without a file: the file is started with its header
        fs::remove(path);
        metrics_csv csv(path);
        csv.run_start({.resumed = true, .start = {1, 0, 4}});
        csv.step_end(step(1, 1, 5, 2));
    }
    CHECK(read_text(path) == "epoch,step,loss,lr,images_per_s\n2,5,2,0.5,100\n");
    metrics_csv early(d.path / "early.csv");
    CHECK_THROWS_AS(early.step_end(step(0, 1, 1, 1)), ssl::error);
}

TEST_CASE("checkpointer: atomic files with the position, the epoch file at an epoch's start; load_run reads it") {
    temp_dir d("ckpt");
    toy_state st;
    for (int i = 0; i < 3; ++i) st.w.value[i] = 1.5f * static_cast<float>(i + 1);
    captured_file notices;
    checkpointer ck(d.path / "run", {{"method", "toy"}, {"epoch", "overridden"}}, notices.f);
    CHECK_THROWS_AS(ck.save({1, 0, 4}), ssl::error);  // no state writer before run_start
    std::size_t writes = 0;
    ck.run_start({.write_state = [&](const fs::path& p, const metadata& meta) {
        ++writes;
        ssl::save_checkpoint(p, st, meta);
    }});
    CHECK(fs::is_directory(d.path / "run"));
    CHECK(ck.last() == d.path / "run" / "last.safetensors");
    CHECK(checkpointer::epoch_file(3) == "epoch_003.safetensors");

    // inside an epoch (max_steps, Ctrl-C): last.safetensors only
    ck.interrupted({1, 2, 6});
    CHECK(writes == 1);
    CHECK(files_in(d.path / "run") == std::vector<std::string>{"last.safetensors"});  // no temporary file left
    auto f = ssl::io::read_safetensors(ck.last());
    CHECK(f.metadata.at("epoch") == "1");
    CHECK(f.metadata.at("step_in_epoch") == "2");
    CHECK(f.metadata.at("global_step") == "6");
    CHECK(f.metadata.at("method") == "toy");
    CHECK(f.metadata.at("format") == "ssl");

    // a complete epoch: last.safetensors and epoch_002.safetensors, the same content
    st.w.value[0] = -7;
    ck.epoch_end({.epoch = 1, .in_epoch = 4, .complete = true, .position = {2, 0, 8}});
    CHECK(writes == 3);
    CHECK(files_in(d.path / "run") == std::vector<std::string>{"epoch_002.safetensors", "last.safetensors"});
    CHECK(read_text(d.path / "run" / "epoch_002.safetensors") == read_text(ck.last()));

    toy_state back;
    const run_position p = load_run(ck.last(), back);
    CHECK(p.epoch == 2);
    CHECK(p.step_in_epoch == 0);
    CHECK(p.global_step == 8);
    CHECK(back.w.value[0] == -7.f);
    CHECK(back.w.value[2] == 4.5f);

    // a file without the position is refused with its name
    ssl::save_checkpoint(d.path / "plain.safetensors", st);
    CHECK_THROWS_WITH_AS(load_run(d.path / "plain.safetensors", back),
                         doctest::Contains("has no 'epoch' entry in its metadata"), ssl::io_error);
    CHECK(with_position({{"a", "b"}}, {3, 1, 13}) ==
          metadata{{"a", "b"}, {"epoch", "3"}, {"step_in_epoch", "1"}, {"global_step", "13"}});

    ck.resumed(ck.last(), {2, 0, 8});
    CHECK(notices.text() == "resuming from " + ck.last().string() + " at epoch 3, step 0\n");
}

TEST_CASE("progress_bar: off a terminal, a line every 20 batches and at the epoch's last") {
    captured_file out;
    progress_bar bar(out.f);  // a file is no terminal
    bar.run_start({.epochs = 2, .steps_per_epoch = 45, .stop_at = 90});
    std::vector<std::pair<std::string, double>> metrics{{"acc", 0.5}};
    for (std::size_t i = 1; i <= 45; ++i) {
        auto r = step(0, i, i, 1.23456);
        r.metrics = metrics;
        bar.step_end(r);
    }
    bar.epoch_end({.epoch = 0, .in_epoch = 45, .complete = true});
    // ETA: 2 s per step, 70, 50 and 45 steps left
    CHECK(out.text() == "epoch 1/2 [==========              ] 20/45 loss 1.2346 acc 0.5 100 img/s ETA 2:20\n"
                        "epoch 1/2 [=====================   ] 40/45 loss 1.2346 acc 0.5 100 img/s ETA 1:40\n"
                        "epoch 1/2 [========================] 45/45 loss 1.2346 acc 0.5 100 img/s ETA 1:30\n"
                        "\n");

    captured_file tty;
    progress_bar live(tty.f, true);  // a terminal: every step redraws the line
    live.run_start({.epochs = 1, .steps_per_epoch = 2, .stop_at = 2});
    live.step_end(step(0, 1, 1, 2));
    live.step_end(step(0, 2, 2, 1));
    live.interrupted({0, 2, 2});
    CHECK(tty.text() == "\repoch 1/1 [============            ] 1/2 loss 2.0000 100 img/s ETA 0:02   "
                        "\repoch 1/1 [========================] 2/2 loss 1.0000 100 img/s ETA 0:00   \n");
    CHECK(format_duration(3725) == "1:02:05");
    CHECK(format_duration(-1) == "--:--");
}

TEST_CASE("interrupt_guard: Ctrl-C sets a flag from run_start to the end of the run, then the old handler is back") {
    captured_file out;
    auto* const before = std::signal(SIGINT, SIG_IGN);
    {
        interrupt_guard g(true, out.f);
        CHECK_FALSE(g.active());
        g.run_start({});
        CHECK(g.active());
        CHECK_FALSE(g.stop_requested());
        std::raise(SIGINT);  // the handler only sets the flag
        CHECK(g.stop_requested());
        g.interrupted({1, 3, 7});
        g.run_end();
        CHECK_FALSE(g.active());
        CHECK((std::signal(SIGINT, SIG_IGN) == SIG_IGN));  // put back
        g.run_start({});                                  // a new run starts with the flag down
        CHECK_FALSE(g.stop_requested());
        g.run_failed();
        CHECK((std::signal(SIGINT, SIG_IGN) == SIG_IGN));
        g.run_start({});
    }  // destroyed while active: put back too
    CHECK((std::signal(SIGINT, before) == SIG_IGN));
    interrupt_guard quiet(false, out.f);
    quiet.interrupted({0, 1, 1});
    CHECK(out.text() == "interrupted at epoch 2, step 3; the checkpoint is saved, continue with --resume\n"
                        "interrupted at epoch 1, step 1 (no --out: nothing saved)\n");
}

TEST_CASE("run_plot: rewritten after every evaluation and at the end, with every series") {
    temp_dir d("plot");
    run_plot plot(d.path / "plot.svg");
    plot.run_start({});
    plot.step_end(step(0, 1, 1, 3.0));
    plot.step_end(step(0, 2, 2, 2.0));
    CHECK_FALSE(fs::exists(plot.path()));
    const std::vector<std::pair<std::string, double>> acc{{"kNN", 41.0}, {"linear", 52.0}};
    plot.evaluated({.epoch = 0, .results = acc});
    const std::string first = read_text(plot.path());
    CHECK(first.find("kNN") != std::string::npos);
    CHECK(first.find("linear") != std::string::npos);
    CHECK(first.find("training loss") != std::string::npos);
    plot.step_end(step(1, 1, 3, 1.0));
    plot.run_end();
    CHECK(read_text(plot.path()) != first);
    CHECK(files_in(d.path) == std::vector<std::string>{"plot.svg"});  // the temporary file is renamed away
}

TEST_CASE("chore_list: calls in list order, find, remove; run_failed tells everyone") {
    std::vector<std::string> log;
    struct thrower final : chore {
        void run_failed() override { throw std::runtime_error("no"); }
        bool stop_requested() const override { return true; }
    };
    chore_list l;
    l.add<recorder>(&log);
    l.add<thrower>();
    l.add(std::make_unique<recorder>(&log));
    CHECK(l.size() == 3);
    CHECK(l.stop_requested());
    l.run_failed();  // the thrower's exception is dropped, the second recorder still hears it
    CHECK(log == std::vector<std::string>{"run_failed", "run_failed"});
    CHECK(l.find<thrower>() != nullptr);
    CHECK(l.find<progress_bar>() == nullptr);
    l.remove<thrower>();
    CHECK(l.size() == 2);
    CHECK_FALSE(l.stop_requested());
    l.clear();
    CHECK(l.empty());
}

TEST_CASE("trainer: the standard chores follow the config; the loop calls the chores at fixed points") {
    temp_dir d("trainer");
    const auto train = small_set();
    ssl::trainer_config tc{.epochs = 2, .batch = 32, .lr = 0.05, .seed = 3, .out_dir = d.path / "run",
                           .progress = false, .max_steps = 6};
    {
        auto l = ssl::trainer<ssl::simclr<>>::standard_chores(tc);
        CHECK(l.size() == 4);
        CHECK(l.find<run_plot>() != nullptr);
        CHECK(l.find<metrics_csv>() != nullptr);
        CHECK(l.find<progress_bar>() == nullptr);
        CHECK(l.find<checkpointer>() != nullptr);
        CHECK(l.find<interrupt_guard>() != nullptr);
        auto quiet = tc;
        quiet.out_dir.clear();
        auto q = ssl::trainer<ssl::simclr<>>::standard_chores(quiet);
        CHECK(q.size() == 1);  // Ctrl-C only
        CHECK(q.find<interrupt_guard>() != nullptr);
    }
    std::vector<std::string> log;
    ssl::simclr<> m(small_simclr());
    ssl::trainer<ssl::simclr<>> t(m, train, tc);
    t.chores().add<recorder>(&log);
    t.on_epoch_end = [](std::size_t) -> std::vector<std::pair<std::string, double>> { return {{"kNN", 1.0}}; };
    auto s = t.fit();
    CHECK(s.steps == 6);
    CHECK(log == std::vector<std::string>{"run_start 2 4 6", "step 0.1 #1", "step 0.2 #2", "step 0.3 #3",
                                          "step 0.4 #4", "epoch_end 0 complete -> 1.0 #4", "evaluated 0 1",
                                          "step 1.1 #5", "step 1.2 #6", "epoch_end 1 cut -> 1.2 #6", "run_end"});
    CHECK(files_in(d.path / "run") ==
          std::vector<std::string>{"epoch_001.safetensors", "last.safetensors", "metrics.csv", "plot.svg"});

    // resumed, then Ctrl-C at the end of epoch 2: the interruption comes after the next step... which is the last
    log.clear();
    auto tc2 = tc;
    tc2.max_steps = 0;
    tc2.resume = true;
    ssl::simclr<> m2(small_simclr());
    ssl::trainer<ssl::simclr<>> t2(m2, train, tc2);
    t2.chores().add<recorder>(&log);
    t2.on_epoch_end = [](std::size_t) -> std::vector<std::pair<std::string, double>> { return {}; };
    auto s2 = t2.fit();
    CHECK(s2.steps == 2);
    CHECK(log == std::vector<std::string>{"resumed 1.2", "run_start 2 4 8 resumed", "step 1.3 #7", "step 1.4 #8",
                                          "epoch_end 1 complete -> 2.0 #8", "evaluated 1 0", "run_end"});
    // the CSV went on from the resume point
    const std::string csv = read_text(d.path / "run" / "metrics.csv");
    CHECK(std::count(csv.begin(), csv.end(), '\n') == 9);  // header + 8 steps
    CHECK(csv.find("2,7,") != std::string::npos);

    // Ctrl-C: interrupted, then run_end
    log.clear();
    auto tc3 = tc;
    tc3.out_dir = d.path / "sigint";
    tc3.max_steps = 0;
    ssl::simclr<> m3(small_simclr());
    ssl::trainer<ssl::simclr<>> t3(m3, train, tc3);
    t3.chores().add<recorder>(&log);
    t3.on_epoch_end = [](std::size_t) -> std::vector<std::pair<std::string, double>> {
        std::raise(SIGINT);
        return {};
    };
    auto s3 = t3.fit();
    CHECK(s3.interrupted);
    // during the epoch's evaluation: the run stops there, before epoch 2 begins
    CHECK(log == std::vector<std::string>{"run_start 2 4 8", "step 0.1 #1", "step 0.2 #2", "step 0.3 #3",
                                          "step 0.4 #4", "epoch_end 0 complete -> 1.0 #4", "evaluated 0 0",
                                          "interrupted 1.0", "run_end"});
    CHECK(s3.steps == 4);

    // a diverging run: run_failed, not run_end
    log.clear();
    auto tc4 = tc;
    tc4.out_dir.clear();
    tc4.lr = 1e30;
    ssl::simclr<> m4(small_simclr());
    ssl::trainer<ssl::simclr<>> t4(m4, train, tc4);
    t4.chores().add<recorder>(&log);
    CHECK_THROWS_WITH_AS(t4.fit(), doctest::Contains("no checkpoint was requested"), ssl::error);
    REQUIRE(log.size() >= 2);
    CHECK(log.back() == "run_failed");
}

TEST_CASE("trainer: without chores a run writes nothing and trains the same") {
    temp_dir d("nochores");
    const auto train = small_set();
    ssl::trainer_config tc{.epochs = 1, .batch = 32, .lr = 0.05, .seed = 3, .out_dir = d.path, .progress = false};
    ssl::simclr<> a(small_simclr()), b(small_simclr());
    const auto with = ssl::trainer<ssl::simclr<>>(a, train, tc).fit();
    fs::remove_all(d.path);
    ssl::trainer<ssl::simclr<>> t(b, train, tc);
    t.chores().clear();
    const auto without = t.fit();
    CHECK_FALSE(fs::exists(d.path));
    CHECK(without.step_loss == with.step_loss);
}

}  // namespace test_trainer_chores
