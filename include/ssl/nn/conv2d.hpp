#pragma once
// 2-d convolution, NCHW, square kernel, same stride and padding in both
// directions, optional bias. Host implementation, by shape (batches of at
// least half a block of images, 8 in float):
//   3x3 stride-1 padding-1, >= 8 input channels: Winograd F(2x2, 3x3), or
//     F(4x4, 3x3) when winograd::output_tile is 4 (backend/host/winograd.hpp);
//   other kernels larger than 1x1 (strided 3x3, the 1-channel stem): direct
//     implicit GEMM on blocks of images as vector lanes
//     (backend/host/direct_conv.hpp);
//   1x1 kernels and small batches: im2col over groups of images + Eigen GEMM.
// Forward and backward take the same path; work is spread over the thread
// pool by blocks or groups of images.
#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "../backend/host/direct_conv.hpp"
#include "../backend/host/im2col.hpp"
#include "../backend/host/small_gemm.hpp"
#include "../backend/host/winograd.hpp"
#include "../core/thread_pool.hpp"
#include "../core/views.hpp"
#include "init.hpp"
#include "parameter.hpp"

namespace ssl::nn {

struct conv2d_config {
    std::size_t in_channels = 0;
    std::size_t out_channels = 0;
    std::size_t kernel = 3;
    std::size_t stride = 1;
    std::size_t padding = 0;
    bool bias = true;
};

template <class T = float>
class conv2d {
public:
    using value_type = T;
    struct cache_type {
        tensor<T> x;  // (N, C, H, W) input
    };

    conv2d() = default;
    explicit conv2d(const conv2d_config& c, std::uint64_t seed = 0) : cfg_(c) {
        require(c.in_channels > 0 && c.out_channels > 0, "conv2d: channels must be positive, got in=", c.in_channels,
                " out=", c.out_channels);
        require(c.kernel > 0 && c.stride > 0, "conv2d: kernel and stride must be positive, got kernel=", c.kernel,
                " stride=", c.stride);
        weight_ = parameter<T>({c.out_channels, c.in_channels, c.kernel, c.kernel}, param_role::weight);
        if (c.bias) bias_ = parameter<T>({c.out_channels}, param_role::bias);
        philox g(seed, stream_id(0xC0417, c.in_channels, c.out_channels, c.kernel));
        const std::size_t fan_in = c.in_channels * c.kernel * c.kernel;
        init::pytorch_default(weight_.value, fan_in, g);
        if (c.bias) init::pytorch_default(bias_.value, fan_in, g);
    }

    const conv2d_config& config() const noexcept { return cfg_; }
    parameter<T>& weight() noexcept { return weight_; }
    parameter<T>& bias() noexcept { return bias_; }
    const parameter<T>& weight() const noexcept { return weight_; }
    bool has_bias() const noexcept { return cfg_.bias; }

    std::size_t output_size(std::size_t in) const {
        return (in + 2 * cfg_.padding - cfg_.kernel) / cfg_.stride + 1;
    }

    forward_result<T, cache_type> forward(const tensor<T>& x) const;

    /// Accumulates dL/dweight (and dL/dbias) and returns dL/dx. With
    /// need_input_grad = false (the first layer of a network) dx is skipped
    /// and an empty tensor is returned.
    tensor<T> backward(const cache_type& c, const tensor<T>& dy, bool need_input_grad = true) {
        return backward_impl(c, dy, need_input_grad, nullptr);
    }

    /// backward that adds dL/dx into `acc` (shape of the input) and returns
    /// it: what a residual block needs when its shortcut's gradient is
    /// already there (one pass less than a separate sum). acc's storage is
    /// written in place, so it must not share storage with the cached input
    /// or with dy.
    tensor<T> backward_add(const cache_type& c, const tensor<T>& dy, tensor<T> acc) {
        require<shape_error>(acc.shape() == c.x.shape(), "conv2d backward_add: accumulator shape ", acc.shape().str(),
                             " does not match input shape ", c.x.shape().str());
        return backward_impl(c, dy, true, &acc);
    }

    template <class F>
    void for_each_parameter(F&& f, const std::string& prefix) {
        f(join_name(prefix, "weight"), weight_);
        if (cfg_.bias) f(join_name(prefix, "bias"), bias_);
    }
    template <class F>
    void for_each_buffer(F&&, const std::string&) {}
    void train(bool on) noexcept { training_ = on; }
    bool training() const noexcept { return training_; }

private:
    /// acc: null (dx is a new tensor) or the tensor dx is added into.
    tensor<T> backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad, const tensor<T>* acc);

    /// Winograd for 3x3 / stride 1 / padding 1 with >= 8 input channels and
    /// at least half a block of images (the transforms run on block_images
    /// lanes; with fewer images most lanes would be idle and im2col wins).
    static bool use_winograd(const backend::host::conv_geometry& q, std::size_t n) {
        return backend::host::winograd::enabled &&
               (backend::host::winograd::output_tile == 2 || backend::host::winograd::output_tile == 4) && q.kh == 3 && q.kw == 3 && q.stride == 1 && q.pad == 1 &&
               q.c >= 8 && 2 * n >= backend::host::winograd::block_images<T>;
    }
    /// How the Winograd work is cut: blocks of block_images<T> images (the
    /// vector lanes of the transforms), `per_task` blocks per parallel task,
    /// and inside a task chunks of `rows` tile rows, so that a chunk has
    /// about winograd_target_tiles columns (V and M stay in cache). A block
    /// bigger than the target is cut into row chunks (one block per task:
    /// the input gradient's tiles overlap across chunks); smaller blocks are
    /// grouped (whole blocks per chunk). At least one task per thread when
    /// there are enough blocks.
    struct winograd_plan {
        std::size_t blocks, per_task, tasks, rows, max_columns;
    };
    static winograd_plan make_winograd_plan(const backend::host::winograd::tiling& tl, std::size_t n) {
        constexpr std::size_t L = backend::host::winograd::block_images<T>;
        winograd_plan p{};
        p.blocks = (n + L - 1) / L;
        const std::size_t row_cols = tl.tw * L, block_cols = tl.th * row_cols;
        if (block_cols >= winograd_target_tiles) {
            p.per_task = 1;
            p.rows = std::clamp<std::size_t>(winograd_target_tiles / row_cols, 1, tl.th);
        } else {
            p.per_task = std::max<std::size_t>(1, winograd_target_tiles / block_cols);
            p.rows = tl.th;
        }
        const std::size_t th = num_threads();
        if (th > 1) p.per_task = std::min(p.per_task, (p.blocks + th - 1) / th);
        p.per_task = std::max<std::size_t>(1, std::min(p.per_task, p.blocks));
        p.tasks = (p.blocks + p.per_task - 1) / p.per_task;
        p.max_columns = p.per_task * p.rows * row_cols;
        return p;
    }
    /// U[p][co][ci] for the current weights, rows split over the pool.
    template <std::size_t TileM>
    tensor<T> winograd_weights() const {
        namespace wg = backend::host::winograd;
        const std::size_t co = cfg_.out_channels, ci = cfg_.in_channels;
        tensor<T> U({wg::npos_of<TileM>, co, ci});
        const std::size_t blocks = std::min<std::size_t>(co, 4 * num_threads());
        tensor<T> work({num_threads(), 9 * ci});
        parallel_for(blocks, [&](std::size_t b, std::size_t w) {
            wg::transform_weights<T, TileM>(weight_.value.data(), co, ci, b * co / blocks, (b + 1) * co / blocks, U.data(),
                                  work.data() + w * 9 * ci);
        });
        return U;
    }
    // Winograd forward / backward. Blocks of L images; block k holds images
    // [k L, min(n, (k + 1) L)) and its columns of V / M start at
    // k * block columns (whole batch) or j * chunk columns (the j-th block
    // of a task's chunk).
    template <std::size_t TileM>
    tensor<T> forward_winograd(const tensor<T>& x, const backend::host::conv_geometry& q) const {
        namespace wg = backend::host::winograd;
        using cmap = Eigen::Map<const matrix<T>>;
        using mmap = Eigen::Map<matrix<T>>;
        constexpr std::size_t L = wg::block_images<T>;
        const std::size_t n = x.dim(0), co = cfg_.out_channels, ci = q.c, hw = q.hw_out(), hwi = q.hw_in();
        const auto tl = wg::make_tiling(q.ho, q.wo, TileM);
        const tensor<T> U = winograd_weights<TileM>();
        tensor<T> y({n, co, q.ho, q.wo});
        const auto plan = make_winograd_plan(tl, n);
        const auto images = [&](std::size_t blk) { return std::min(L, n - blk * L); };
        if (winograd_global(plan, wg::npos_of<TileM>)) {
            // Whole batch at once: transforms split over blocks, the 36 GEMMs over positions.
            const std::size_t bc = wg::chunk_columns<T>(tl, 0, tl.th), nt = plan.blocks * bc;
            const auto ldt = static_cast<Eigen::Index>(nt);
            tensor<T> V({wg::npos_of<TileM>, ci, nt}), M({wg::npos_of<TileM>, co, nt});
            const std::size_t ss = wg::scratch_size<T>(tl, tl.th);
            tensor<T> work({num_threads(), ss});
            parallel_for(plan.blocks, [&](std::size_t k, std::size_t w) {
                wg::transform_input<T, TileM>(x.data() + k * L * ci * hwi, images(k), ci, tl, 0, tl.th, V.data() + k * bc, nt,
                                    work.data() + w * ss);
            });
            parallel_for(wg::npos_of<TileM>, [&](std::size_t p, std::size_t) {
                mmap(M.data() + p * co * nt, co, ldt).noalias() =
                    cmap(U.data() + p * co * ci, co, ci) * cmap(V.data() + p * ci * nt, ci, ldt);
            });
            parallel_for(plan.blocks, [&](std::size_t k, std::size_t w) {
                wg::transform_output<T, TileM>(M.data() + k * bc, images(k), co, tl, 0, tl.th, nt, y.data() + k * L * co * hw,
                                     work.data() + w * ss);
            });
        } else {
            // per chunk: V, M and the transform scratch stay in cache; per-worker
            // scratch taken before the loop (the same pool requests every step)
            const bool small = use_small_gemm(co, ci);
            const std::size_t mc = plan.max_columns, ss = wg::scratch_size<T>(tl, plan.rows);
            const std::size_t per_worker = wg::npos_of<TileM> * (ci + co) * mc + ss;
            tensor<T> work({num_threads(), per_worker});
            // forward chunks are independent (no overlapping writes): one
            // parallel task per (task's blocks, chunk of tile rows)
            const std::size_t chunks = (tl.th + plan.rows - 1) / plan.rows;
            parallel_for(plan.tasks * chunks, [&](std::size_t tc, std::size_t w) {
                const std::size_t t = tc / chunks;
                const std::size_t k0 = t * plan.per_task, nb = std::min(plan.per_task, plan.blocks - k0);
                T* V = work.data() + w * per_worker;
                T* M = V + wg::npos_of<TileM> * ci * mc;
                T* Z = M + wg::npos_of<TileM> * co * mc;
                {
                    const std::size_t a0 = (tc % chunks) * plan.rows, a1 = std::min(tl.th, a0 + plan.rows);
                    const std::size_t cc = wg::chunk_columns<T>(tl, a0, a1), nt = nb * cc;
                    for (std::size_t j = 0; j < nb; ++j)
                        wg::transform_input<T, TileM>(x.data() + (k0 + j) * L * ci * hwi, images(k0 + j), ci, tl, a0, a1,
                                            V + j * cc, nt, Z);
                    const auto ldm = static_cast<Eigen::Index>(nt);
                    for (std::size_t p = 0; p < wg::npos_of<TileM>; ++p) {
                        if (small)
                            backend::host::small_gemm(U.data() + p * co * ci, ci, V + p * ci * nt, nt, M + p * co * nt,
                                                      nt, co, ci, nt);
                        else
                            mmap(M + p * co * nt, co, ldm).noalias() =
                                cmap(U.data() + p * co * ci, co, ci) * cmap(V + p * ci * nt, ci, ldm);
                    }
                    for (std::size_t j = 0; j < nb; ++j)
                        wg::transform_output<T, TileM>(M + j * cc, images(k0 + j), co, tl, a0, a1, nt,
                                             y.data() + (k0 + j) * L * co * hw, Z);
                }
            });
        }
        add_bias_planes(y);
        return y;
    }
    template <std::size_t TileM>
    tensor<T> backward_winograd(const tensor<T>& x, const backend::host::conv_geometry& q, const tensor<T>& dy,
                                bool need_input_grad, const tensor<T>* acc) {
        namespace wg = backend::host::winograd;
        using cmap = Eigen::Map<const matrix<T>>;
        using mmap = Eigen::Map<matrix<T>>;
        constexpr std::size_t L = wg::block_images<T>;
        const std::size_t n = x.dim(0), co = cfg_.out_channels, ci = q.c, hw = q.hw_out(), hwi = q.hw_in();
        const auto tl = wg::make_tiling(q.ho, q.wo, TileM);
        tensor<T> U;
        if (need_input_grad) U = winograd_weights<TileM>();
        tensor<T> dx;
        if (need_input_grad) dx = acc ? *acc : tensor<T>(x.shape());
        const bool add = acc != nullptr;
        const auto plan = make_winograd_plan(tl, n);
        const auto images = [&](std::size_t blk) { return std::min(L, n - blk * L); };
        const std::size_t acc_size = need_input_grad ? wg::accumulator_size<T>(tl, ci) : 0;
        if (winograd_global(plan, wg::npos_of<TileM>)) {
            const std::size_t bc = wg::chunk_columns<T>(tl, 0, tl.th), nt = plan.blocks * bc;
            const auto ldt = static_cast<Eigen::Index>(nt);
            tensor<T> V({wg::npos_of<TileM>, ci, nt}), dM({wg::npos_of<TileM>, co, nt}), dU({wg::npos_of<TileM>, co, ci});
            const std::size_t ss = std::max({wg::scratch_size<T>(tl, tl.th), wg::finish_scratch_size<T>(tl), 9 * ci});
            const std::size_t per_worker = ss + acc_size;
            tensor<T> work({num_threads(), per_worker});
            parallel_for(plan.blocks, [&](std::size_t k, std::size_t w) {
                T* Z = work.data() + w * per_worker;
                wg::transform_input<T, TileM>(x.data() + k * L * ci * hwi, images(k), ci, tl, 0, tl.th, V.data() + k * bc, nt, Z);
                wg::output_adjoint<T, TileM>(dy.data() + k * L * co * hw, images(k), co, tl, 0, tl.th, nt, dM.data() + k * bc, Z);
            });
            parallel_for(wg::npos_of<TileM>, [&](std::size_t p, std::size_t) {
                cmap dMp(dM.data() + p * co * nt, co, ldt);
                mmap Vp(V.data() + p * ci * nt, ci, ldt);
                mmap(dU.data() + p * co * ci, co, ci).noalias() = dMp * Vp.transpose();
                if (need_input_grad) Vp.noalias() = cmap(U.data() + p * co * ci, co, ci).transpose() * dMp;
            });
            const std::size_t wblocks = std::min<std::size_t>(co, 4 * num_threads());
            parallel_for(wblocks + (need_input_grad ? plan.blocks : 0), [&](std::size_t b, std::size_t w) {
                T* scratch = work.data() + w * per_worker;
                if (b < wblocks) {
                    wg::weight_adjoint_add<T, TileM>(dU.data(), co, ci, b * co / wblocks, (b + 1) * co / wblocks,
                                           weight_.grad.data(), scratch);
                    return;
                }
                const std::size_t k = b - wblocks;
                T* A = scratch + ss;
                wg::input_adjoint<T, TileM>(V.data() + k * bc, ci, tl, 0, tl.th, nt, A);
                wg::input_adjoint_finish(A, images(k), ci, tl, dx.data() + k * L * ci * hwi, add, scratch);
            });
            winograd_bias_grad(dy, n, co, hw);
            return dx;
        }
        // one partial dU per pool thread (worker ids go up to num_threads() - 1)
        const std::size_t workers = num_threads(), usz = wg::npos_of<TileM> * co * ci;
        // dV = U^T dM by small_gemm needs U^T (ci x co) per position
        const bool small = need_input_grad && use_small_gemm(co, ci);
        tensor<T> Ut;
        if (small) {
            Ut = tensor<T>({wg::npos_of<TileM>, ci, co});
            for (std::size_t p = 0; p < wg::npos_of<TileM>; ++p)
                mmap(Ut.data() + p * ci * co, ci, co) = cmap(U.data() + p * co * ci, co, ci).transpose();
        }
        tensor<T> dU_parts({workers, usz});
        std::vector<char> used(workers, 0);
        const std::size_t mc = plan.max_columns;
        const std::size_t ss = std::max({wg::scratch_size<T>(tl, plan.rows), wg::finish_scratch_size<T>(tl), 9 * ci});
        const std::size_t per_worker = wg::npos_of<TileM> * (ci + co) * mc + ss + acc_size;
        tensor<T> work({workers, per_worker});
        parallel_for(plan.tasks, [&](std::size_t t, std::size_t w) {
            const std::size_t k0 = t * plan.per_task, nb = std::min(plan.per_task, plan.blocks - k0);
            T* V = work.data() + w * per_worker;
            T* dM = V + wg::npos_of<TileM> * ci * mc;
            T* Z = dM + wg::npos_of<TileM> * co * mc;
            T* A = Z + ss;  // the input gradient's accumulator, one block at a time
            T* dU = dU_parts.data() + w * usz;
            for (std::size_t a0 = 0; a0 < tl.th; a0 += plan.rows) {
                const std::size_t a1 = std::min(tl.th, a0 + plan.rows);
                const std::size_t cc = wg::chunk_columns<T>(tl, a0, a1), nt = nb * cc;
                const auto ldt = static_cast<Eigen::Index>(nt);
                for (std::size_t j = 0; j < nb; ++j) {
                    wg::transform_input<T, TileM>(x.data() + (k0 + j) * L * ci * hwi, images(k0 + j), ci, tl, a0, a1,
                                        V + j * cc, nt, Z);
                    wg::output_adjoint<T, TileM>(dy.data() + (k0 + j) * L * co * hw, images(k0 + j), co, tl, a0, a1, nt,
                                       dM + j * cc, Z);
                }
                for (std::size_t p = 0; p < wg::npos_of<TileM>; ++p) {
                    mmap dUp(dU + p * co * ci, co, ci);
                    cmap dMp(dM + p * co * nt, co, ldt);
                    mmap Vp(V + p * ci * nt, ci, ldt);
                    if (used[w])
                        dUp.noalias() += dMp * Vp.transpose();
                    else
                        dUp.noalias() = dMp * Vp.transpose();
                    if (small)
                        backend::host::small_gemm(Ut.data() + p * ci * co, co, dM + p * co * nt, nt, V + p * ci * nt,
                                                  nt, ci, co, nt);
                    else if (need_input_grad)
                        Vp.noalias() = cmap(U.data() + p * co * ci, co, ci).transpose() * dMp;
                }
                used[w] = 1;
                if (!need_input_grad) continue;
                // several blocks per task only when a chunk is whole blocks
                // (a0 = 0, a1 = th), so each block's accumulator is complete here
                for (std::size_t j = 0; j < nb; ++j) {
                    wg::input_adjoint<T, TileM>(V + j * cc, ci, tl, a0, a1, nt, A);
                    if (a1 == tl.th)
                        wg::input_adjoint_finish(A, images(k0 + j), ci, tl, dx.data() + (k0 + j) * L * ci * hwi, add,
                                                 Z);
                }
            }
        });
        // Sum the workers' dU and map it back to the 3x3 filters, rows split over the pool.
        const std::size_t wblocks = std::min<std::size_t>(co, 4 * num_threads());
        parallel_for(wblocks, [&](std::size_t b, std::size_t wk) {
            const std::size_t o0 = b * co / wblocks, o1 = (b + 1) * co / wblocks;
            std::size_t first = 0;
            while (first < workers && !used[first]) ++first;
            if (first == workers) return;
            for (std::size_t w = 0; w < workers; ++w) {
                if (!used[w] || w == first) continue;
                const T* src = dU_parts.data() + w * usz;
                T* dst = dU_parts.data() + first * usz;
                for (std::size_t p = 0; p < wg::npos_of<TileM>; ++p)
                    for (std::size_t i = (p * co + o0) * ci; i < (p * co + o1) * ci; ++i) dst[i] += src[i];
            }
            wg::weight_adjoint_add<T, TileM>(dU_parts.data() + first * usz, co, ci, o0, o1, weight_.grad.data(),
                                   work.data() + wk * per_worker);
        });
        winograd_bias_grad(dy, n, co, hw);
        return dx;
    }
    /// The direct (implicit GEMM) path for the convolutions Winograd does not
    /// take, except 1x1 ones (each input pixel is read once: a plain GEMM, or
    /// a strided copy and a GEMM, measured as fast): blocks of L images as
    /// vector lanes, so it needs at least half a block of images. Forward
    /// also needs at least min_direct_rows rows of the unrolled kernel
    /// (c kh kw): below, interleaving the output costs more than the product
    /// (the 1-channel stem at width 64: 4-5 ms against 1 ms for im2col). The
    /// two directions choose independently (they share only the input).
    static bool use_direct(const backend::host::conv_geometry& q, std::size_t n, bool forward) {
        return backend::host::direct::enabled && q.kh * q.kw > 1 &&
               2 * n >= backend::host::direct::block_images<T> && q.c <= direct_max_channels &&
               (!forward || q.rows() >= min_direct_rows);
    }
    tensor<T> forward_direct(const tensor<T>& x, const backend::host::conv_geometry& q) const {
        namespace dc = backend::host::direct;
        constexpr std::size_t L = dc::block_images<T>;
        const std::size_t n = x.dim(0), co = cfg_.out_channels, blocks = (n + L - 1) / L;
        const std::size_t zsz = dc::padded_size<T>(q), fsz = dc::plane_scratch_size<T>(q),
                          ysz = dc::chunk_size<T>(q, co), per_worker = zsz + fsz + ysz;
        tensor<T> y({n, co, q.ho, q.wo});
        // Z's padding ring must be zero; blocks rewrite only its interior
        tensor<T> work({num_threads(), per_worker});
        ssl::detail::parallel_fill(work.data(), work.numel(), T(0));
        tensor<T> Wp({co, q.rows()});
        dc::pack_rows(weight_.value.data(), co, q.rows(), Wp.data());
        parallel_for(blocks, [&](std::size_t b, std::size_t w) {
            T* Z = work.data() + w * per_worker;
            T* F = Z + zsz;
            T* Y = F + fsz;
            const std::size_t nb = std::min(L, n - b * L);
            dc::pad_interleave(x.data() + b * L * q.c * q.hw_in(), nb, q, Z, F);
            dc::forward(Wp.data(), co, Z, q, nb, y.data() + b * L * co * q.hw_out(), Y);
        });
        add_bias_planes(y);
        return y;
    }
    tensor<T> backward_direct(const tensor<T>& x, const backend::host::conv_geometry& q, const tensor<T>& dy,
                              bool need_input_grad, const tensor<T>* acc) {
        namespace dc = backend::host::direct;
        constexpr std::size_t L = dc::block_images<T>;
        const std::size_t n = x.dim(0), co = cfg_.out_channels, k = q.rows(), blocks = (n + L - 1) / L;
        const std::size_t workers = num_threads();
        const std::size_t zsz = dc::padded_size<T>(q), fsz = dc::plane_scratch_size<T>(q),
                          dsz = dc::output_size<T>(q, co);
        const std::size_t per_worker = zsz + fsz + dsz + (need_input_grad ? zsz : 0) + co * k;
        tensor<T> dx;
        if (need_input_grad) dx = acc ? *acc : tensor<T>(x.shape());
        tensor<T> Wtp;  // W^T packed by row blocks of the kernel rows
        if (need_input_grad) {
            tensor<T> Wt({k, co});
            as_matrix(Wt, k, co) = as_matrix(std::as_const(weight_.value), co, k).transpose();
            Wtp = tensor<T>({k, co});
            dc::pack_rows(Wt.data(), k, co, Wtp.data());
        }
        // Z's padding ring and the per-worker weight gradients start at zero
        tensor<T> work({workers, per_worker});
        ssl::detail::parallel_fill(work.data(), work.numel(), T(0));
        parallel_for(blocks, [&](std::size_t b, std::size_t w) {
            T* Z = work.data() + w * per_worker;
            T* F = Z + zsz;
            T* DY = F + fsz;
            T* dZ = DY + dsz;
            T* dW = dZ + (need_input_grad ? zsz : 0);
            const std::size_t nb = std::min(L, n - b * L);
            dc::pad_interleave(x.data() + b * L * q.c * q.hw_in(), nb, q, Z, F);
            dc::interleave_output(dy.data() + b * L * co * q.hw_out(), nb, co, q, DY);
            dc::weight_grad(DY, co, Z, q, dW);
            if (need_input_grad) {
                std::fill(dZ, dZ + zsz, T(0));
                dc::input_grad(Wtp.data(), co, DY, q, dZ);
                dc::finish_input_grad(dZ, nb, q, dx.data() + b * L * q.c * q.hw_in(), acc != nullptr, F);
            }
        });
        auto gW = as_vector(weight_.grad);
        const std::size_t dw_at = zsz + fsz + dsz + (need_input_grad ? zsz : 0);
        for (std::size_t w = 0; w < workers; ++w)
            gW += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(work.data() + w * per_worker + dw_at, co * k);
        winograd_bias_grad(dy, n, co, q.hw_out());
        return dx;
    }
    /// small_gemm instead of Eigen for the per-group Winograd products when
    /// both channel counts are at most small_gemm_max_channels.
    static bool use_small_gemm(std::size_t co, std::size_t ci) {
        return co <= small_gemm_max_channels && ci <= small_gemm_max_channels;
    }
    void winograd_bias_grad(const tensor<T>& dy, std::size_t n, std::size_t co, std::size_t hw) {
        if (!cfg_.bias) return;
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t o = 0; o < co; ++o) {
                const T* p = dy.data() + (b * co + o) * hw;
                T s = 0;
                for (std::size_t i = 0; i < hw; ++i) s += p[i];
                bias_.grad[o] += s;
            }
    }
    /// Whole-batch Winograd (transforms split over blocks, the 36 GEMMs over
    /// positions) when the transformed weights U do not fit in a core's L2
    /// (each chunk would stream all of U) or the chunks are very narrow;
    /// otherwise per chunk, which keeps V and M in cache.
    bool winograd_global(const winograd_plan& plan, std::size_t npos) const {
        if (winograd_mode == 1) return false;
        if (winograd_mode == 2) return true;
        const std::size_t u_bytes = npos * cfg_.out_channels * cfg_.in_channels * sizeof(T);
        return u_bytes > (std::size_t{4} << 20) || plan.max_columns < 32;
    }

    backend::host::conv_geometry geometry(const tensor<T>& x) const {
        check_rank(x, 4, "conv2d", "(N, C, H, W)");
        require<shape_error>(x.dim(1) == cfg_.in_channels, "conv2d: input has ", x.dim(1),
                             " channels but the layer expects ", cfg_.in_channels, " (input shape ", x.shape().str(),
                             ")");
        require<shape_error>(x.dim(2) + 2 * cfg_.padding >= cfg_.kernel && x.dim(3) + 2 * cfg_.padding >= cfg_.kernel,
                             "conv2d: input ", x.shape().str(), " is smaller than the ", cfg_.kernel, "x",
                             cfg_.kernel, " kernel with padding ", cfg_.padding);
        backend::host::conv_geometry q{x.dim(1), x.dim(2), x.dim(3), cfg_.kernel, cfg_.kernel, cfg_.stride,
                                       cfg_.padding, 0, 0};
        q.ho = output_size(q.h);
        q.wo = output_size(q.w);
        return q;
    }
    bool is_pointwise(const backend::host::conv_geometry& q) const {
        return q.kh == 1 && q.kw == 1 && q.stride == 1 && q.pad == 0;
    }
    static std::size_t group_size(const backend::host::conv_geometry& q, std::size_t n) {
        std::size_t g = backend::host::conv_group_size(q.hw_out(), n);
        const std::size_t th = num_threads();
        // keep at least one task per thread
        if (th > 1 && n >= th) g = std::min(g, (n + th - 1) / th);
        return std::max<std::size_t>(g, 1);
    }
    /// y (N, C, H, W) += bias per channel (when the layer has one).
    void add_bias_planes(tensor<T>& y) const {
        if (!cfg_.bias) return;
        const std::size_t n = y.dim(0), co = y.dim(1), hw = y.dim(2) * y.dim(3);
        for (std::size_t b = 0; b < n; ++b)
            for (std::size_t o = 0; o < co; ++o) {
                T* p = y.data() + (b * co + o) * hw;
                const T v = bias_.value[o];
                for (std::size_t i = 0; i < hw; ++i) p[i] += v;
            }
    }
    template <class M>
    void add_bias(M&& Y) const {
        if (cfg_.bias) Y.colwise() += as_vector(bias_.value);
    }

public:
    /// Tiles per Winograd GEMM group (tuning knob for benchmarks).
    static inline std::size_t winograd_target_tiles = 256;
    /// 0: choose per shape, 1: always per image group, 2: always whole batch.
    static inline int winograd_mode = 0;
    /// Largest channel count (in and out) for which the per-group Winograd
    /// products use backend::host::small_gemm; 0: always Eigen.
    static inline std::size_t small_gemm_max_channels = 64;
    /// Largest input channel count for which the direct path is used; larger
    /// layers use im2col (at 256 channels, ResNet-18's last stage at width
    /// 64, its weight gradient over 4x4 outputs was measured slower).
    static inline std::size_t direct_max_channels = 128;
    /// Fewest unrolled kernel rows (c kh kw) for a direct forward.
    static inline std::size_t min_direct_rows = 16;

private:
    conv2d_config cfg_{};
    parameter<T> weight_{}, bias_{};
    bool training_ = true;
};

template <class T>
auto conv2d<T>::forward(const tensor<T>& x) const -> forward_result<T, cache_type> {
    const auto q = geometry(x);
    if (use_winograd(q, x.dim(0)))
        return {backend::host::winograd::output_tile == 4 ? forward_winograd<4>(x, q) : forward_winograd<2>(x, q),
                cache_type{x}};
    if (use_direct(q, x.dim(0), true)) return {forward_direct(x, q), cache_type{x}};
    const std::size_t n = x.dim(0), co = cfg_.out_channels, hwo = q.hw_out(), k = q.rows();
    tensor<T> y({n, co, q.ho, q.wo});
    const std::size_t g = group_size(q, n);
    const std::size_t tasks = (n + g - 1) / g;
    const bool direct = is_pointwise(q);
    auto W = as_matrix(weight_.value, co, k);
    // per-worker scratch (col, then the group's output), taken before the
    // parallel loop so the pool sees the same requests every step
    const std::size_t per_worker = (k + co) * g * hwo;
    tensor<T> work({num_threads(), per_worker});
    parallel_for(tasks, [&](std::size_t t, std::size_t w) {
        const std::size_t b0 = t * g, gc = std::min(g, n - b0);
        const std::size_t ncols = gc * hwo;
        T* col = work.data() + w * per_worker;
        T* yg = col + k * ncols;
        const T* xb = x.data() + b0 * q.c * q.hw_in();
        if (gc == 1) {
            Eigen::Map<matrix<T>> Y(y.data() + b0 * co * hwo, co, hwo);
            if (direct) {
                Y.noalias() = W * Eigen::Map<const matrix<T>>(xb, k, hwo);
            } else {
                backend::host::im2col(xb, 1, q, col);
                Y.noalias() = W * Eigen::Map<const matrix<T>>(col, k, ncols);
            }
            add_bias(Y);
        } else {
            backend::host::im2col(xb, gc, q, col);
            Eigen::Map<matrix<T>> Yg(yg, co, ncols);
            Yg.noalias() = W * Eigen::Map<const matrix<T>>(col, k, ncols);
            add_bias(Yg);
            for (std::size_t i = 0; i < gc; ++i)
                Eigen::Map<matrix<T>>(y.data() + (b0 + i) * co * hwo, co, hwo) = Yg.middleCols(i * hwo, hwo);
        }
    });
    return {std::move(y), cache_type{x}};
}

template <class T>
auto conv2d<T>::backward_impl(const cache_type& c, const tensor<T>& dy, bool need_input_grad, const tensor<T>* acc) -> tensor<T> {
    const tensor<T>& x = c.x;
    const auto q = geometry(x);
    const std::size_t n = x.dim(0), co = cfg_.out_channels, hwo = q.hw_out(), k = q.rows();
    require<shape_error>(dy.shape() == shape_t{n, co, q.ho, q.wo}, "conv2d backward: gradient shape ",
                         dy.shape().str(), " does not match output shape ",
                         shape_t{n, co, q.ho, q.wo}.str());
    if (use_winograd(q, n))
        return backend::host::winograd::output_tile == 4 ? backward_winograd<4>(x, q, dy, need_input_grad, acc)
                                                         : backward_winograd<2>(x, q, dy, need_input_grad, acc);
    if (use_direct(q, n, false)) return backward_direct(x, q, dy, need_input_grad, acc);
    const std::size_t g = group_size(q, n);
    const std::size_t tasks = (n + g - 1) / g;
    const std::size_t workers = num_threads();  // worker ids go up to num_threads() - 1
    const bool direct = is_pointwise(q);
    tensor<T> dx;
    if (need_input_grad) {
        // a pointwise conv writes each image's dx whole; col2im adds
        dx = acc ? *acc : tensor<T>(x.shape());
        if (!acc && !(direct && g == 1)) ssl::detail::parallel_fill(dx.data(), dx.numel(), T(0));
    }
    // Per-worker partial weight/bias gradients, summed at the end.
    tensor<T> dw_parts = tensor<T>::zeros({workers, co * k});
    tensor<T> db_parts = tensor<T>::zeros({workers, co});
    auto W = as_matrix(weight_.value, co, k);
    const std::size_t per_worker = (co + k) * g * hwo;  // grouped dy, then col
    tensor<T> work({workers, per_worker});
    parallel_for(tasks, [&](std::size_t t, std::size_t w) {
        const std::size_t b0 = t * g, gc = std::min(g, n - b0);
        const std::size_t ncols = gc * hwo;
        const T* xb = x.data() + b0 * q.c * q.hw_in();
        T* dyg = work.data() + w * per_worker;
        T* col = dyg + co * ncols;
        Eigen::Map<matrix<T>> dW(dw_parts.data() + w * co * k, co, k);
        Eigen::Map<Eigen::Matrix<T, Eigen::Dynamic, 1>> db(db_parts.data() + w * co, co);
        const T* dyg_ptr;
        if (gc == 1) {
            dyg_ptr = dy.data() + b0 * co * hwo;
        } else {
            Eigen::Map<matrix<T>> G(dyg, co, ncols);
            for (std::size_t i = 0; i < gc; ++i)
                G.middleCols(i * hwo, hwo) = Eigen::Map<const matrix<T>>(dy.data() + (b0 + i) * co * hwo, co, hwo);
            dyg_ptr = dyg;
        }
        Eigen::Map<const matrix<T>> dY(dyg_ptr, co, ncols);
        if (cfg_.bias) db += dY.rowwise().sum();
        if (direct && gc == 1) {
            Eigen::Map<const matrix<T>> X(xb, k, hwo);
            dW.noalias() += dY * X.transpose();
            if (need_input_grad) {
                Eigen::Map<matrix<T>> dX(dx.data() + b0 * q.c * q.hw_in(), k, hwo);
                if (acc)
                    dX.noalias() += W.transpose() * dY;
                else
                    dX.noalias() = W.transpose() * dY;
            }
            return;
        }
        backend::host::im2col(xb, gc, q, col);
        Eigen::Map<matrix<T>> C(col, k, ncols);
        dW.noalias() += dY * C.transpose();
        if (need_input_grad) {
            C.noalias() = W.transpose() * dY;
            backend::host::col2im_add(col, gc, q, dx.data() + b0 * q.c * q.hw_in());
        }
    });
    auto gW = as_vector(weight_.grad);
    for (std::size_t w = 0; w < workers; ++w)
        gW += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(dw_parts.data() + w * co * k, co * k);
    if (cfg_.bias) {
        auto gb = as_vector(bias_.grad);
        for (std::size_t w = 0; w < workers; ++w)
            gb += Eigen::Map<const Eigen::Matrix<T, Eigen::Dynamic, 1>>(db_parts.data() + w * co, co);
    }
    return dx;
}

// ssl's own tests and programs build with SSL_EXTERN_TEMPLATES: conv2d<float>
// and <double> (with their kernels) are compiled once, in
// cmake/instances/{float,double}.cpp, instead of in each translation unit.
// forward and backward_impl are defined outside the class for this: members
// defined inside it are inline, which an extern template does not suppress.
#ifdef SSL_EXTERN_TEMPLATES
extern template class conv2d<float>;
extern template class conv2d<double>;
#endif

}  // namespace ssl::nn
