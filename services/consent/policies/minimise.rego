# METADATA
# title: Data minimisation (K11) and KOPP content only as category kopp (K1, K7)
# description: >
#   The fields the recipient may see are listed per purpose and data category in
#   data.legal.minimise ("*" covers every category). No list means nothing may be shared.
#   Fields that carry KOPP content (data.legal.kopp_fields: care needs, family ties, network,
#   siblings, recommended measure, measures) are released only under category kopp, which
#   needs written consent (bvl § 5A-6), whatever a field list for another category says.
package ema.minimise

import rego.v1

lists := data.legal.minimise[input.request.purpose]

default listed := []

listed := lists[input.request.data_category]

listed := lists["*"] if not lists[input.request.data_category]

kopp_field(f) if f in data.legal.kopp_fields

fields := [f | some f in listed; not kopp_content_outside_kopp(f)]

kopp_content_outside_kopp(f) if {
	kopp_field(f)
	input.request.data_category != "kopp"
}

reasons contains sprintf("no field list for purpose %s and category %s (K11)", [input.request.purpose, input.request.data_category]) if {
	count(fields) == 0
}

reasons contains sprintf("field %s carries KOPP content and is released only as category kopp with written consent (K1)", [f]) if {
	some f in listed
	kopp_content_outside_kopp(f)
}
