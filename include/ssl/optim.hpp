#pragma once
// Optimizers (SGD, LARS, Adam, AdamW) and learning-rate schedules.
#include "optim/optimizer.hpp"
#include "optim/sgd.hpp"
#include "optim/lars.hpp"
#include "optim/adam.hpp"
#include "optim/schedule.hpp"
