// A loss that cannot take what the target update provides (BYOL's loss with
// InstDisc's memory bank) fails with the loss sentence.
#include "method_policies.hpp"
#include <ssl/head/embedding.hpp>
#include <ssl/target_update/memory_bank.hpp>
template class ssl::method<cf::ok_backbone, ssl::augment::one_view, ssl::head::embedding<float>, ssl::loss::byol_pair,
                           ssl::target::memory_bank>;
