#pragma once
// Losses: softmax cross entropy (supervised heads, linear evaluation),
// NT-Xent (SimCLR, MoCo-style InfoNCE over two views) and BYOL's cosine
// regression loss.
#include "loss/cross_entropy.hpp"
#include "loss/cosine.hpp"
#include "loss/nt_xent.hpp"
