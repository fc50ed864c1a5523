#pragma once
// Evaluation protocols on frozen features: weighted kNN (InstDisc), the
// linear probe (L-BFGS logistic regression) and metrics (accuracy, NMI).
#include "eval/knn.hpp"
#include "eval/linear_probe.hpp"
#include "eval/metrics.hpp"
