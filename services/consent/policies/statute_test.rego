package ema.statute_test

import rego.v1

import data.ema.statute

# One expression per test: `[not] <rule> with input as <JSON literal>`. regopy 1.5.2 crashes
# on `with` over most policies, so tests/unit/test_policies.py runs each test by setting the
# input and querying the rule; OPA runs this file as it is (docs/decisions/0003, 0004).


duty_to_report_applies if "bvl-13-2" in statute.applicable

anonymous_applies if "fvl-13a-2" in statute.applicable

duty_1992_applies if "bvl-1992-6-4" in statute.applicable

exit_handover_applies if "exit-handover" in statute.applicable

wrong_claim_noted if "claimed basis hpl-25 does not apply to this flow" in statute.reasons


test_k10_claimed_duty_to_report_applies if {
	duty_to_report_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k10_unclaimed_duty_to_report_does_not_apply if {
	not duty_to_report_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k9_anonymous_consultation_needs_no_claim if {
	anonymous_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "anonymous_consultation", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k4_claim_that_does_not_fit_is_noted if {
	wrong_claim_noted with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false, "claimed_basis": "hpl-25"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_statute_not_yet_in_force_does_not_apply if {
	not duty_to_report_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1600000000000000000}
}

test_glass_needs_an_emergency_purpose if {
	not statute.glass with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": true}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

# Issue 14 item 9: the rule in force on the day of the decision.

test_k10_1992_act_applies_before_2023 if {
	duty_1992_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-1992-6-4"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1654041600000000000}
}

test_k10_2021_act_does_not_apply_before_2023 if {
	not duty_to_report_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1654041600000000000}
}

test_k10_1992_act_no_longer_applies_after_2022 if {
	not duty_1992_applies with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "school", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-1992-6-4"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k7_exit_handover_is_no_statute if {
	not exit_handover_applies with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false, "claimed_basis": "exit-handover"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}
