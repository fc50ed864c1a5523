// A new method is one policy swapped: SimCLR with BYOL's predictor on top of
// its projector (the head policy changes; augmentation, loss and target stay
// SimCLR's). Trains briefly on the synthetic set and reports kNN accuracy.
#include <ssl/data/synthetic.hpp>
#include <ssl/eval/knn.hpp>
#include <ssl/simclr.hpp>
#include <ssl/trainer.hpp>

#include <cstdio>

// The whole new method:
template <class Backbone = ssl::resnet18<float>>
using simclr_predictor = ssl::method<Backbone, ssl::augment::two_views, ssl::head::projector_predictor<float>,
                                     ssl::loss::contrastive_pair, ssl::target::none>;

int main() {
    auto train = ssl::data::synthetic({.size = 1024, .classes = 10, .height = 16, .width = 16, .seed = 1}).to_dataset();
    auto test = ssl::data::synthetic({.size = 500, .classes = 10, .height = 16, .width = 16, .seed = 2}).to_dataset();

    simclr_predictor<>::config c;
    c.backbone = {.in_channels = 1, .width = 8, .stem = ssl::stem::cifar};
    c.augment = {16, 1};
    c.head = {{256, 64, true}, {256, 64, true}};
    c.loss = {0.2};
    simclr_predictor<> method(c);

    ssl::trainer<simclr_predictor<>> t(method, train, {.epochs = 3, .batch = 64, .lr = 0.1, .progress = false});
    const auto s = t.fit();

    auto all = [](const ssl::data::image_dataset& d) {
        std::vector<std::size_t> i(d.size());
        for (std::size_t k = 0; k < i.size(); ++k) i[k] = k;
        return d.batch(i);
    };
    auto r = ssl::eval::knn_evaluate(method.embed(all(train)), train.labels, method.embed(all(test)), test.labels, {.k = 50});
    std::printf("simclr + predictor: loss %.3f -> %.3f in %zu steps, kNN top-1 %.1f %% (chance 10 %%)\n", s.first_loss,
                s.last_loss, s.steps, 100 * r.top1);
    return s.last_loss < s.first_loss && r.top1 > 0.2 ? 0 : 1;  // learned: the loss fell, kNN well above chance
}
