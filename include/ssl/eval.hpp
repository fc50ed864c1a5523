#pragma once
// Evaluation protocols on frozen features: weighted kNN (InstDisc), the
// linear probe (L-BFGS logistic regression) and metrics (accuracy, NMI);
// issue 21's suite: the linear SVM with cross-validated cost (Goyal et al.'s
// VOC07 protocol), low-shot classification and multi-layer probes; and
// semi-supervised fine-tuning of the whole network on 1 % / 10 % of the labels.
#include "eval/knn.hpp"
#include "eval/linear_probe.hpp"
#include "eval/metrics.hpp"
#include "eval/layers.hpp"
#include "eval/linear_svm.hpp"
#include "eval/lowshot.hpp"
#include "eval/finetune.hpp"
