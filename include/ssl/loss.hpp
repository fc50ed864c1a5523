#pragma once
// Losses: softmax cross entropy (supervised heads, pretext tasks, linear
// evaluation), NT-Xent (SimCLR), BYOL's cosine regression loss, and the
// method-level policies built on them.
#include "loss/cross_entropy.hpp"
#include "loss/cluster_losses.hpp"
#include "loss/cosine.hpp"
#include "loss/info_nce.hpp"
#include "loss/instance_ce.hpp"
#include "loss/nce.hpp"
#include "loss/nt_xent.hpp"
#include "loss/policies.hpp"
