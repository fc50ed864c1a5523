// Shared by the compile_fail/method_* cases: valid policies, so each case
// breaks exactly one of the five and must fail with that policy's sentence.
#pragma once
#include <ssl/augment/policies.hpp>
#include <ssl/backbone/convnet.hpp>
#include <ssl/head/mlp.hpp>
#include <ssl/loss/policies.hpp>
#include <ssl/method.hpp>
#include <ssl/target_update/ema.hpp>
#include <ssl/target_update/none.hpp>

namespace cf {
using ok_backbone = ssl::convnet<float>;
using ok_augment = ssl::augment::two_views;
using ok_head = ssl::head::mlp<float>;
using ok_loss = ssl::loss::contrastive_pair;
using ok_target = ssl::target::none;
struct not_a_policy {};
}  // namespace cf
