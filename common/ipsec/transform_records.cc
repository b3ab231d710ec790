#include "common/ipsec/transform_records.h"

namespace vpn::ipsec {

void AddToProposal(const TransformSet& t, bool ike, v1::Proposal* out) {
  auto add = [out](v1::Transform::Type type, uint32_t id, uint32_t bits = 0) {
    v1::Transform* transform = out->add_transforms();
    transform->set_type(type);
    transform->set_id(id);
    transform->set_key_length_bits(bits);
  };
  add(v1::Transform::ENCR, t.encryption, t.encryption_key_bits);
  if (ike) add(v1::Transform::PRF, t.prf);
  if (t.integrity != 0) add(v1::Transform::INTEG, t.integrity);
  if (t.key_exchange != 0) add(v1::Transform::KE, t.key_exchange);
  if (!ike) add(v1::Transform::ESN, t.esn);
}

TransformSet FromProposal(const v1::Proposal& proposal) {
  TransformSet t;
  for (const v1::Transform& transform : proposal.transforms()) {
    const uint16_t id = static_cast<uint16_t>(transform.id());
    switch (transform.type()) {
      case v1::Transform::ENCR:
        t.encryption = id;
        t.encryption_key_bits = static_cast<uint16_t>(transform.key_length_bits());
        break;
      case v1::Transform::PRF:
        t.prf = id;
        break;
      case v1::Transform::INTEG:
        t.integrity = id;
        break;
      case v1::Transform::KE:
        t.key_exchange = id;
        break;
      case v1::Transform::ESN:
        t.esn = id;
        break;
      default:
        break;
    }
  }
  return t;
}

}  // namespace vpn::ipsec
