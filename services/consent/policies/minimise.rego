# METADATA
# title: Data minimisation (K11)
# description: >
#   The fields the recipient may see are listed per purpose and data category in
#   data.legal.minimise ("*" covers every category). No list means nothing may be shared.
package ema.minimise

import rego.v1

lists := data.legal.minimise[input.request.purpose]

default fields := []

fields := lists[input.request.data_category]

fields := lists["*"] if not lists[input.request.data_category]

reasons contains sprintf("no field list for purpose %s and category %s (K11)", [input.request.purpose, input.request.data_category]) if {
	count(fields) == 0
}
