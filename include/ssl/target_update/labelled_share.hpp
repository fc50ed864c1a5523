#pragma once
// Target update "labelled_share": S4L's minibatches (Zhai et al., ICCV 2019,
// sec. 3: a labelled and an unlabelled minibatch of equal size in every
// step). It changes no target; it chooses each epoch's sample order so that
// a fixed share s of every batch is drawn from the labelled subset:
//
//   position k of the order is labelled  <=>  floor((k + 1) s) > floor(k s)
//
// so any B consecutive positions (a batch, for any B) hold floor(sB) or
// ceil(sB) labelled samples. Labelled positions take the labelled ids in
// passes, each pass a new shuffle (an id repeats only after all were drawn);
// unlabelled positions likewise take the other ids. An epoch is N samples,
// as the loader's permutation.
//
// Contract: config.labelled are sorted ids < N (the loss's subset,
// loss/s4l.hpp); share in [0, 1). share 0 or an empty subset: no order (the
// loader's permutation, every image once). A pure function of (config, N,
// seed, epoch), so a resumed run and every rank see the same order.
//
// Design choices, one line each:
//   - interleaved positions instead of separate batches: the loader, the
//     step and data parallel stay as they are, and the share holds at any
//     batch size;
//   - without it, a 1 % subset puts about 2.5 labelled images in a batch of
//     256 and each is seen once per epoch (bench/README.md, S4L);
//   - every id is still drawn: labelled ids share * N times per epoch in
//     all, unlabelled ones (1 - share) * N times.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "../core/error.hpp"
#include "../core/rng.hpp"
#include "../core/tensor.hpp"
#include "protocol.hpp"

namespace ssl::target {

struct labelled_share_config {
    double share = 0;                   ///< s: labelled fraction of every batch (0: off)
    std::vector<std::size_t> labelled;  ///< sorted ids of the labelled subset
};

/// The order of one epoch (see the file comment); empty when off.
inline std::vector<std::size_t> labelled_share_order(std::span<const std::size_t> labelled, std::size_t n,
                                                     double share, std::uint64_t seed, std::uint64_t epoch) {
    require(share >= 0 && share < 1, "labelled_share: share must be in [0, 1), got ", share);
    if (share == 0 || labelled.empty() || n == 0) return {};
    std::vector<char> is_labelled(n, 0);
    for (std::size_t i = 0; i < labelled.size(); ++i) {
        require(labelled[i] < n, "labelled_share: labelled id ", labelled[i], " is not below the ", n,
                " samples of the data set");
        require(i == 0 || labelled[i] > labelled[i - 1], "labelled_share: labelled ids must be sorted and distinct");
        is_labelled[labelled[i]] = 1;
    }
    std::vector<std::size_t> lab(labelled.begin(), labelled.end()), unl;
    for (std::size_t i = 0; i < n; ++i)
        if (!is_labelled[i]) unl.push_back(i);
    philox g(seed, stream_id(0x5a4c5348ull, epoch));
    // passes over a pool, each a fresh shuffle
    auto drawer = [&g](std::vector<std::size_t>& pool) {
        return [&g, &pool, next = pool.size()]() mutable {
            if (next == pool.size()) {
                for (std::size_t i = pool.size(); i > 1; --i) std::swap(pool[i - 1], pool[g.below(i)]);
                next = 0;
            }
            return pool[next++];
        };
    };
    auto draw_lab = drawer(lab);
    auto draw_unl = drawer(unl);
    std::vector<std::size_t> order(n);
    for (std::size_t k = 0; k < n; ++k) {
        const bool l = unl.empty() || static_cast<std::uint64_t>(static_cast<double>(k + 1) * share) >
                                          static_cast<std::uint64_t>(static_cast<double>(k) * share);
        order[k] = l ? draw_lab() : draw_unl();
    }
    return order;
}

struct labelled_share {
    static constexpr bool data_parallel = true;  ///< the order is the same on every rank; the loader slices it
    using config_type = labelled_share_config;
    static constexpr const char* name = "labelled_share";

    template <class Backbone, class Head>
    class state {
    public:
        using T = typename Backbone::value_type;
        state() = default;
        state(const labelled_share_config& c, Backbone&, Head&) : cfg_(c) {
            require(c.share >= 0 && c.share < 1, "target::labelled_share: share must be in [0, 1), got ", c.share);
        }
        std::vector<tensor<T>> targets(const target_input<T>&) { return {}; }
        target_request after_step(Backbone&, Head&, std::vector<tensor<T>>&&, const target_step&) { return {}; }
        template <class F>
        void for_each_state(F&&, const std::string&) {}
        epoch_plan begin_epoch(epoch_context<Backbone, Head>& ctx) {
            epoch_plan plan;
            auto order = labelled_share_order(cfg_.labelled, ctx.data.size(), cfg_.share, ctx.seed, ctx.epoch);
            if (!order.empty()) plan.order = std::move(order);
            return plan;
        }

    private:
        labelled_share_config cfg_;
    };
};

}  // namespace ssl::target
