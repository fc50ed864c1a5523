// A method whose first policy is not a backbone fails with the backbone sentence.
#include "method_policies.hpp"
template class ssl::method<cf::not_a_policy, cf::ok_augment, cf::ok_head, cf::ok_loss, cf::ok_target>;
