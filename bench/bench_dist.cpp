// Data parallel throughput and traffic (issue 22): steps per second of
// ssl::trainer for a selection of the data-parallel methods, and the bytes each
// rank sends per step (dist::counting around the MPI communicator: gradient
// buckets, synchronized batch norm, gathered features, the split classifier,
// the loss and metric means, the stop checks), at whatever P mpirun gives.
//   mpirun -np P bench_dist [STEPS=12] [BATCH=64] [WIDTH=16] [METHODS=all]
// METHODS: comma-separated among simclr, byol, moco, instdisc, rotnet,
// instance-cls. Each rank gets hardware threads / P (one process: all of
// them), so P = 1 and P = 2 on one machine compare the same cores. The
// first 2 steps are warm-up; steps/s is over the rest. Rank 0 prints one
// line per method. bench/README.md, "Data parallel: steps per second".
#include <ssl/byol.hpp>
#include <ssl/data/synthetic.hpp>
#include <ssl/dist/mpi.hpp>
#include <ssl/instance_cls.hpp>
#include <ssl/instdisc.hpp>
#include <ssl/moco.hpp>
#include <ssl/rotnet.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using clock_type = std::chrono::steady_clock;

/// Times the steps after the warm-up and the bytes sent in them.
class step_meter final : public ssl::train::chore {
public:
    step_meter(const ssl::dist::counting& c, std::size_t warmup) : c_(c), warmup_(warmup) {}
    void step_end(const ssl::train::step_report& r) override {
        if (r.step == warmup_) t0_ = clock_type::now(), b0_ = c_.bytes, n0_ = c_.calls;
        if (r.step > warmup_) t1_ = clock_type::now(), b1_ = c_.bytes, n1_ = c_.calls, steps_ = r.step - warmup_;
    }
    double steps_per_second() const {
        return steps_ ? static_cast<double>(steps_) / std::chrono::duration<double>(t1_ - t0_).count() : 0.0;
    }
    double bytes_per_step() const { return steps_ ? static_cast<double>(b1_ - b0_) / static_cast<double>(steps_) : 0; }
    double calls_per_step() const { return steps_ ? static_cast<double>(n1_ - n0_) / static_cast<double>(steps_) : 0; }

private:
    const ssl::dist::counting& c_;
    std::size_t warmup_, steps_ = 0, b0_ = 0, b1_ = 0, n0_ = 0, n1_ = 0;
    clock_type::time_point t0_, t1_;
};

struct settings {
    std::size_t steps = 12, batch = 64, width = 16;
};

const ssl::data::image_dataset& images(std::size_t n) {
    static const auto d = ssl::data::synthetic({.size = n, .classes = 10, .channels = 3, .height = 32, .width = 32,
                                                .noise = 0.2, .seed = 1})
                              .to_dataset();
    return d;
}

template <class M>
void run(const char* name, typename M::config cfg, const settings& s, ssl::dist::communicator& mpi) {
    ssl::dist::counting c(mpi);
    M m(cfg);
    const std::size_t warmup = 2;
    ssl::trainer_config tc{.epochs = 1, .batch = s.batch, .optimizer = "sgd", .lr = 0.05, .weight_decay = 1e-4,
                           .warmup_epochs = 0, .seed = 3, .progress = false, .max_steps = warmup + s.steps,
                           .comm = &c};
    ssl::trainer<M> t(m, images((warmup + s.steps) * s.batch), tc);
    auto& meter = t.chores().template add<step_meter>(c, warmup);
    t.fit();
    const double sps = mpi.sum(meter.steps_per_second()) / mpi.size();  // the ranks step together
    if (mpi.rank() == 0)
        std::printf("%-13s P=%d  %7.3f steps/s  %8.1f images/s  %10.0f bytes/step/rank  %5.1f collectives/step\n",
                    name, mpi.size(), sps, sps * static_cast<double>(s.batch), meter.bytes_per_step(),
                    meter.calls_per_step());
}

}  // namespace

int main(int argc, char** argv) {
    ssl::dist::mpi_session session(argc, argv);
    ssl::dist::mpi comm;
    settings s;
    if (argc > 1) s.steps = std::stoul(argv[1]);
    if (argc > 2) s.batch = std::stoul(argv[2]);
    if (argc > 3) s.width = std::stoul(argv[3]);
    const std::string which = argc > 4 ? argv[4] : "all";
    const auto wanted = [&](const std::string& m) {
        if (which == "all") return true;
        std::stringstream ss(which);
        for (std::string t; std::getline(ss, t, ',');)
            if (t == m) return true;
        return false;
    };
    const std::size_t hw = std::max(1u, std::thread::hardware_concurrency());
    ssl::set_num_threads(std::max<std::size_t>(1, hw / static_cast<std::size_t>(comm.size())));
    if (comm.rank() == 0)
        std::printf("bench_dist: %d ranks x %zu threads, batch %zu (global), resnet18 width %zu, 32x32x3, %zu steps\n",
                    comm.size(), ssl::num_threads(), s.batch, s.width, s.steps);
    const ssl::resnet_options net{.in_channels = 3, .width = s.width, .stem = ssl::stem::cifar, .seed = 1};
    const std::size_t n = (2 + s.steps) * s.batch;
    if (wanted("simclr")) run<ssl::simclr<>>("simclr", ssl::simclr_config(net, 32, 3), s, comm);
    if (wanted("byol")) run<ssl::byol<>>("byol", ssl::byol_config(net, 32, 3), s, comm);
    if (wanted("moco")) run<ssl::moco_v2<>>("moco-v2", ssl::moco_v2_config(net, 32, 3), s, comm);
    if (wanted("instdisc")) run<ssl::instdisc<>>("instdisc", ssl::instdisc_config(net, 32, 3, n), s, comm);
    if (wanted("rotnet")) run<ssl::rotnet<>>("rotnet", ssl::rotnet_config(net, 32, 3), s, comm);
    if (wanted("instance-cls"))
        run<ssl::instance_cls<>>("instance-cls", ssl::instance_cls_config(net, 32, 3, n), s, comm);
    return 0;
}
