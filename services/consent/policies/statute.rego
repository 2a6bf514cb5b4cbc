# METADATA
# title: Statutory bases that allow a flow without consent (K4, K7, K9, K10) and break-the-glass
# description: >
#   Statutes are policy data (data.legal.statutes) with references, validity dates and a
#   "verify" flag where they rest on general law. A statute that requires a claim applies
#   only when the sender names it in claimed_basis.
package ema.statute

import rego.v1

req := input.request

in_force(s) if {
	time.parse_rfc3339_ns(s.valid_from) <= input.now_ns
	not s.valid_to
}

in_force(s) if {
	time.parse_rfc3339_ns(s.valid_from) <= input.now_ns
	input.now_ns < time.parse_rfc3339_ns(s.valid_to)
}

claim_ok(_, s) if s.requires_claim == false

claim_ok(id, s) if {
	s.requires_claim == true
	req.claimed_basis == id
}

applicable contains id if {
	some id, s in data.legal.statutes
	in_force(s)
	req.data_category in s.categories
	req.purpose in s.purposes
	input.units.source.kind in s.source_sectors
	input.units.recipient.kind in s.recipient_sectors
	claim_ok(id, s)
}

# Break-the-glass: an emergency release by a unit that may make one, always with obligations.
glass if {
	req.break_the_glass == true
	input.units.source.kind in data.legal.break_the_glass.source_sectors
	req.purpose in data.legal.break_the_glass.purposes
}

reasons contains sprintf("claimed basis %s does not apply to this flow", [req.claimed_basis]) if {
	is_string(req.claimed_basis)
	not req.claimed_basis in applicable
}

reasons contains "break-the-glass refused: not allowed for this source or purpose" if {
	req.break_the_glass == true
	not glass
}
