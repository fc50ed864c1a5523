// A method whose second policy is not an augmentation fails with its sentence.
#include "method_policies.hpp"
template class ssl::method<cf::ok_backbone, cf::not_a_policy, cf::ok_head, cf::ok_loss, cf::ok_target>;
