#pragma once
// Every chore of the trainer (see chore.hpp for the points they are called at).
#include "checkpointer.hpp"
#include "chore.hpp"
#include "interrupt_guard.hpp"
#include "metrics_csv.hpp"
#include "progress_bar.hpp"
#include "run_plot.hpp"
