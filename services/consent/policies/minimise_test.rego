package ema.minimise_test

import rego.v1

import data.ema.minimise

# One expression per test: `[not] <rule> with input as <JSON literal>`. regopy 1.5.2 crashes
# on `with` over most policies, so tests/unit/test_policies.py runs each test by setting the
# input and querying the rule; OPA runs this file as it is (docs/decisions/0003, 0004).


settlement_list if minimise.fields == ["age", "languages", "care_needs", "family_ties", "network", "siblings", "recommended_measure"]

no_therapy_notes_for_settlement if not "therapy_notes" in minimise.fields

wildcard_list if minimise.fields == ["concern", "observations", "age", "care_centre"]

empty if minimise.fields == []

handover_kopp_list if minimise.fields == ["care_needs", "measures", "family_ties", "network", "siblings", "recommended_measure"]


test_k11_settlement_fields_for_kopp if {
	settlement_list with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k11_settlement_never_gets_therapy_notes if {
	no_therapy_notes_for_settlement with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k11_wildcard_category_list if {
	wildcard_list with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "barnevern", "purpose": "concern_report", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k11_unknown_purpose_gets_nothing if {
	empty with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "marketing", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k1_settlement_category_gets_no_kopp_fields if {
	empty with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "kommune-0301", "data_category": "settlement", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k7_handover_kopp_fields_only_as_kopp if {
	handover_kopp_list with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}
