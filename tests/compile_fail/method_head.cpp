// A method whose third policy is not a head fails with the head sentence.
#include "method_policies.hpp"
template class ssl::method<cf::ok_backbone, cf::ok_augment, cf::not_a_policy, cf::ok_loss, cf::ok_target>;
