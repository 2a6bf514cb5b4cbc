package ema.share_test

import rego.v1

import data.ema.share

# regopy 1.5.2 crashes on `x := rule with input as v` and on `with input as <variable>`;
# tests compare rule values inline against literal inputs (docs/decisions/0003).

test_kopp_to_municipality_without_consent_is_withheld if {
	not share.allow with input as {
		"request": {
			"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301",
			"data_category": "kopp", "purpose": "settlement", "break_the_glass": false,
		},
		"child": {"age": 12},
		"consents": [],
	}
}

test_health_to_school_without_consent_is_withheld if {
	not share.allow with input as {
		"request": {
			"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a",
			"data_category": "health", "purpose": "schooling", "break_the_glass": false,
		},
		"child": {"age": 17},
		"consents": [],
	}
}
