// Trains a ResNet backbone with a linear classifier on the synthetic image
// set for a few steps and prints the loss going down: the smallest complete
// use of ssl's pieces (backbone, loss, optimizer, schedule, checkpoint).
//
//   train_backbone [--arch resnet18|resnet34|resnet50] [--width 8] [--steps 40]
//                  [--batch 64] [--size 16] [--lr 0.05] [--threads N] [--out model.safetensors]
#include <ssl/ssl.hpp>

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <iostream>

namespace {

struct options {
    std::string arch = "resnet18";
    std::size_t width = 8, steps = 40, batch = 64, size = 16, threads = 0;
    double lr = 0.05;
    std::string out;
};

template <class Net>
int train(Net& net, const options& o) {
    ssl::data::synthetic data({.size = o.batch * o.steps, .classes = 10, .channels = 1, .height = o.size,
                               .width = o.size, .seed = 1});
    ssl::data::synthetic test({.size = 500, .classes = 10, .channels = 1, .height = o.size, .width = o.size, .seed = 2});
    ssl::loss::cross_entropy<float> ce;
    ssl::optim::sgd<float> opt(net, {.lr = o.lr, .momentum = 0.9, .weight_decay = 5e-4});
    const ssl::optim::warmup_cosine lr(o.lr, o.steps / 10, o.steps);

    std::printf("training %s (width %zu, %zu parameters) on %zu synthetic %zux%zu images, batch %zu, %zu threads\n",
                o.arch.c_str(), o.width, ssl::parameter_count(net), data.size(), o.size, o.size, o.batch,
                ssl::num_threads());
    const auto t0 = std::chrono::steady_clock::now();
    double first = 0, last = 0;
    for (std::size_t step = 0; step < o.steps; ++step) {
        const std::size_t b0 = step * o.batch;
        auto x = data.images(b0, b0 + o.batch);
        auto y = data.labels(b0, b0 + o.batch);
        net.train(true);
        opt.zero_grad();
        auto [logits, cache] = net.forward(x);
        auto l = ce(logits, y);
        net.backward(cache, l.grad, false);
        opt.set_lr(lr(step));
        opt.step();
        if (step == 0) first = l.value;
        last = l.value;
        if (step % 5 == 0 || step + 1 == o.steps)
            std::printf("step %3zu  loss %.4f  batch accuracy %5.1f%%  lr %.4f\n", step, l.value,
                        100.0 * static_cast<double>(l.correct) / static_cast<double>(o.batch), lr(step));
    }
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    net.train(false);
    auto logits = net.forward(test.images(0, test.size())).out;
    auto r = ce(logits, test.labels(0, test.size()));
    std::printf("loss %.4f -> %.4f in %.1f s (%.0f images/s); held-out accuracy %.1f%% (chance 10%%)\n", first, last,
                secs, static_cast<double>(o.steps * o.batch) / secs,
                100.0 * static_cast<double>(r.correct) / static_cast<double>(test.size()));
    if (!o.out.empty()) {
        ssl::save_checkpoint(o.out, net, {{"arch", o.arch}});
        std::printf("checkpoint written to %s (torchvision names)\n", o.out.c_str());
    }
    return last < first ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    CLI::App app{"Train a ResNet backbone on synthetic images and print the loss"};
    app.add_option("--arch", o.arch, "resnet18, resnet34 or resnet50")->check(CLI::IsMember({"resnet18", "resnet34", "resnet50"}));
    app.add_option("--width", o.width, "base width (64 = torchvision)")->check(CLI::PositiveNumber);
    app.add_option("--steps", o.steps, "training steps")->check(CLI::PositiveNumber);
    app.add_option("--batch", o.batch, "batch size")->check(CLI::Range(2, 1 << 16));
    app.add_option("--size", o.size, "image height and width")->check(CLI::Range(8, 1024));
    app.add_option("--lr", o.lr, "peak learning rate")->check(CLI::PositiveNumber);
    app.add_option("--threads", o.threads, "host threads (0 = all cores)");
    app.add_option("--out", o.out, "write a safetensors checkpoint here");
    CLI11_PARSE(app, argc, argv);
    try {
        if (o.threads) ssl::set_num_threads(o.threads);
        const ssl::resnet_options ro{.in_channels = 1, .width = o.width, .stem = ssl::stem::cifar, .num_classes = 10};
        if (o.arch == "resnet18") {
            ssl::resnet18<float> net(ro);
            return train(net, o);
        } else if (o.arch == "resnet34") {
            ssl::resnet34<float> net(ro);
            return train(net, o);
        }
        ssl::resnet50<float> net(ro);
        return train(net, o);
    } catch (const ssl::error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return 2;
    }
}
