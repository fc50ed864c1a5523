#pragma once
// Umbrella header: image augmentations (ssl::augment): ops, pipelines,
// multi-view helpers and the SimCLR / BYOL / evaluation presets.
#include "augment/blur.hpp"
#include "augment/color.hpp"
#include "augment/geometry.hpp"
#include "augment/image.hpp"
#include "augment/normalize.hpp"
#include "augment/pipeline.hpp"
#include "augment/presets.hpp"
#include "augment/policies.hpp"
