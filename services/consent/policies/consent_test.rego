package ema.consent_test

import rego.v1

import data.ema.consent

# One expression per test: `[not] <rule> with input as <JSON literal>`. regopy 1.5.2 crashes
# on `with` over most policies, so tests/unit/test_policies.py runs each test by setting the
# input and querying the rule; OPA runs this file as it is (docs/decisions/0003, 0004).


k1_usable if consent.usable == {"k1"}

k3_reason if "consent h1 was given by the representative; for health data at age 16 it must come from the young person (K3)" in consent.reasons

k1_form_reason if "consent k1 is not written with a signed document hash; kopp data needs written consent (K1/K2)" in consent.reasons

k8_reason if "consent k1: the child was not heard and no refusal to take part is documented (K8)" in consent.reasons

k8_objection_noted if "consent k1: the child objected to this sharing; the grantor weighed it (K8)" in consent.reasons


test_matching_written_consent_is_usable if {
	k1_usable with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_consent_matches_a_recipient_by_unit_id if {
	k1_usable with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": ["centre-a"], "source_sectors": [], "recipient_units": ["kommune-0301"], "recipient_sectors": [], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_age_switch_reason_names_who_must_consent if {
	k3_reason with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_oral_consent_reason if {
	k1_form_reason with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k8_not_heard_reason if {
	k8_reason with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "not_heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k8_objection_is_noted_for_the_privacy_officer if {
	k8_objection_noted with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": true}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k6_refusal_in_force_refuses if {
	consent.refused with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}]}], "now_ns": 1780000000000000000}
}

test_k6_expired_refusal_does_not_refuse if {
	not consent.refused with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1779913600000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}]}], "now_ns": 1780000000000000000}
}
