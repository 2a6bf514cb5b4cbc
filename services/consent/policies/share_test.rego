package ema.share_test

import rego.v1

import data.ema.share

# One expression per test: `[not] <rule> with input as <JSON literal>`. regopy 1.5.2 crashes
# on `with` over most policies, so tests/unit/test_policies.py runs each test by setting the
# input and querying the rule; OPA runs this file as it is (docs/decisions/0003, 0004).


settlement_fields_only if share.decision.fields == ["age", "languages", "care_needs", "family_ties", "network", "siblings", "recommended_measure"]

anonymous_fields_only if share.decision.fields == ["age_band", "question", "situation"]

basis_is_consent_k1 if share.decision.legal_basis == "consent:k1"

basis_is_duty_to_report if share.decision.legal_basis == "statute:bvl-13-2"

review_within_30_days if share.decision.obligations == [{"kind": "review", "within_hours": 720}]

glass_obligations if share.decision.obligations == [{"kind": "review", "within_hours": 72}, {"kind": "notify_representative"}]

nothing_released if {
	share.decision.allow == false
	share.decision.fields == []
	share.decision.legal_basis == null
}

strict_tier_noted if "health is in the strict confidentiality tier (K5)" in share.decision.reasons

stale_noted if "policy data is stale or has no validity date: withhold until it is renewed" in share.decision.reasons

exit_handover_not_a_basis if "claimed basis exit-handover does not apply to this flow" in share.decision.reasons

role_ends_reason if "consent k1: a representative's or guardian's role ends at 18 (K3)" in share.decision.reasons

both_signatures_reason if "consent h1: the birth date is estimated and the child is within 12 months of 16, so the age cannot decide alone; health data needs consents from the representative or guardian and the young person (K3)" in share.decision.reasons

plain_norwegian_withheld if share.decision.reason_nb == "Opplysningene ble ikke delt. Det finnes ikke samtykke eller lovhjemmel som dekker denne delingen."


handover_residence_fields if share.decision.fields == ["residence_status", "residence_decided_on", "languages", "age"]

barnevern_feedback_fields_only if share.decision.fields == ["received_on", "investigation_opened"]

basis_is_report_feedback if share.decision.legal_basis == "statute:bvl-melder"

referral_feedback_fields if share.decision.fields == ["received_on", "assessment", "follow_up_planned", "contact"]


# K1: KOPP to the settling municipality needs written consent.

test_k1_kopp_with_written_consent_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_basis_is_the_consent if {
	basis_is_consent_k1 with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_kopp_without_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k1_withheld_releases_nothing if {
	nothing_released with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k1_withheld_reason_in_norwegian if {
	plain_norwegian_withheld with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k1_kopp_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_kopp_content_as_category_settlement_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "kommune-0301", "data_category": "settlement", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "s1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["settlement"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_settlement_offer_as_kopp_with_written_consent_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k1_settlement_offer_as_kopp_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K2: health results need written consent.

test_k2_health_with_written_consent_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k2_health_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K3: the representative consents under 16; from 16 the young person consents to health.

test_k3_representative_health_consent_counts_at_15 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 15, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_health_consent_does_not_count_at_16 if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_health_consent_does_not_count_at_17 if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 17, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_young_person_health_consent_counts_at_17 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 17, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_young_person_health_consent_does_not_count_at_15 if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 15, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_still_consents_to_kopp_at_17 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 17, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K3 (issue 14 item 2): from 16 the young person consents to school as to health matters; from
# 18 only the young person; an estimated age near 16 or 18 needs both signatures.

test_k3_young_person_school_consent_counts_at_16 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "flyktning-0301", "recipient_unit": "school-a", "data_category": "school", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": false}, "units": {"source": {"id": "flyktning-0301", "kind": "municipality"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["school"], "source_units": [], "source_sectors": ["municipality"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_school_consent_does_not_count_at_16 if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "flyktning-0301", "recipient_unit": "school-a", "data_category": "school", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": false}, "units": {"source": {"id": "flyktning-0301", "kind": "municipality"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "s1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["school"], "source_units": [], "source_sectors": ["municipality"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_school_consent_counts_at_15 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "flyktning-0301", "recipient_unit": "school-a", "data_category": "school", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 15, "age_estimated": false}, "units": {"source": {"id": "flyktning-0301", "kind": "municipality"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "s1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["school"], "source_units": [], "source_sectors": ["municipality"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_consent_does_not_count_at_19 if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 19, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_representative_role_ends_at_18_reason if {
	role_ends_reason with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 19, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_young_person_consent_counts_at_19 if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 19, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_16_young_person_alone_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": true, "age_months": 195}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_16_representative_alone_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 15, "age_estimated": true, "age_months": 186}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_16_reason_asks_for_both if {
	both_signatures_reason with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 15, "age_estimated": true, "age_months": 186}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_16_with_both_signatures_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": true, "age_months": 195}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}, {"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_known_age_near_16_decides_alone if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 16, "age_estimated": false, "age_months": 195}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_far_from_16_decides_alone if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 13, "age_estimated": true, "age_months": 160}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_18_representative_alone_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 17, "age_estimated": true, "age_months": 210}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_18_with_both_signatures_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 17, "age_estimated": true, "age_months": 210}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}, {"id": "y1", "grantor_role": "young_person", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k3_estimated_age_near_16_representative_alone_counts_for_kopp if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 16, "age_estimated": true, "age_months": 195}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K4: health to school always needs consent; between treating health personnel a statute can apply.

test_k4_health_to_school_without_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false, "claimed_basis": "hpl-25"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k4_health_to_treating_health_personnel_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "health-b", "data_category": "health", "purpose": "treatment", "break_the_glass": false, "claimed_basis": "hpl-25"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "health-b", "kind": "health"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k4_health_to_health_needs_the_claim if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "health-b", "data_category": "health", "purpose": "treatment", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "health-b", "kind": "health"}}, "consents": [], "now_ns": 1780000000000000000}
}

# K5: health and barnevern are a stricter tier: oral consent is enough for school data only.

test_k5_school_data_with_oral_consent_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "kommune-0301", "data_category": "school", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "s1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["school"], "source_units": [], "source_sectors": ["school"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k5_health_data_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k5_strict_tier_is_noted if {
	strict_tier_noted with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "schooling", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

# K6: scope, validity and refusals; a refusal beats a broader consent.

test_k6_refusal_beats_broader_consent if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "b1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp", "settlement"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality", "school"], "purposes": ["settlement", "schooling"]}], "refusals": []}, {"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["kopp"], "source_units": [], "source_sectors": [], "recipient_units": ["kommune-0301"], "recipient_sectors": [], "purposes": ["settlement"]}]}], "now_ns": 1780000000000000000}
}

test_k6_refusal_of_another_flow_does_not_block if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "b1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp", "settlement"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality", "school"], "purposes": ["settlement", "schooling"]}], "refusals": []}, {"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["kopp"], "source_units": [], "source_sectors": [], "recipient_units": ["kommune-1103"], "recipient_sectors": [], "purposes": ["settlement"]}]}], "now_ns": 1780000000000000000}
}

test_k6_expired_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1779913600000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k6_consent_not_yet_valid_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1780086400000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k6_consent_for_another_recipient_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": ["kommune-1103"], "recipient_sectors": [], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k6_consent_for_another_purpose_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["schooling"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K7 and K1: information goes on only where consent exists; no guideline passage overrides a
# refusal, and exit information that carries KOPP content is category kopp (issue 14 item 1b).

test_k7_handover_to_barnevern_without_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false, "claimed_basis": "exit-handover"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k7_claimed_exit_handover_is_no_statute if {
	exit_handover_not_a_basis with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "barnevern", "purpose": "handover", "break_the_glass": false, "claimed_basis": "exit-handover"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k7_handover_with_written_consent_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k7_handover_refusal_is_not_overridden if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false, "claimed_basis": "exit-handover"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [{"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["kopp", "barnevern"], "source_units": [], "source_sectors": [], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}]}], "now_ns": 1780000000000000000}
}

test_k7_handover_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k7_handover_as_barnevern_category_releases_no_kopp_content if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "barnevern", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [{"id": "b1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["barnevern"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K8: the child was heard, or a refusal to take part is documented.

test_k8_consent_where_child_was_not_heard_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "not_heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k8_documented_refusal_to_take_part_counts if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "declined_to_take_part", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# K9: anonymous consultation without consent, only non-identifying fields.

test_k9_anonymous_consultation_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "anonymous_consultation", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k9_anonymous_consultation_gets_no_identifying_fields if {
	anonymous_fields_only with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "anonymous_consultation", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k9_identity_data_is_never_anonymous if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "barnevern-0301", "data_category": "identity", "purpose": "anonymous_consultation", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

# K10: duty to report a concern to municipal barnevern, without consent.

test_k10_concern_to_barnevern_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k10_basis_is_the_statute if {
	basis_is_duty_to_report with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k10_release_must_be_reviewed if {
	review_within_30_days with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_k10_duty_to_report_overrides_a_refusal if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "barnevern-0301", "data_category": "health", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "barnevern-0301", "kind": "barnevern"}}, "consents": [{"id": "r1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [], "refusals": [{"categories": ["health"], "source_units": [], "source_sectors": ["school"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["concern_report"]}]}], "now_ns": 1780000000000000000}
}

test_k10_concern_to_a_school_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "school-a", "data_category": "health", "purpose": "concern_report", "break_the_glass": false, "claimed_basis": "bvl-13-2"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "school-a", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

# K11: only the fields the purpose needs.

test_k11_settlement_gets_only_settlement_fields if {
	settlement_fields_only with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_k11_purpose_without_a_field_list_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "research", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["research"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# Break-the-glass and stale data.

test_glass_emergency_release_is_allowed if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "health-b", "data_category": "health", "purpose": "emergency", "break_the_glass": true}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "health-b", "kind": "health"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_glass_release_must_be_reviewed_and_representative_told if {
	glass_obligations with input as {"request": {"case_id": "c1", "source_unit": "health-a", "recipient_unit": "health-b", "data_category": "health", "purpose": "emergency", "break_the_glass": true}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "health-a", "kind": "health"}, "recipient": {"id": "health-b", "kind": "health"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_glass_from_a_school_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "school-a", "recipient_unit": "health-b", "data_category": "health", "purpose": "emergency", "break_the_glass": true}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "school-a", "kind": "school"}, "recipient": {"id": "health-b", "kind": "health"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_stale_policy_data_withholds_even_with_consent if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [{"id": "k1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1814646400000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["municipality"], "purposes": ["settlement"]}], "refusals": []}], "now_ns": 1814560000000000000}
}

test_stale_policy_data_is_named if {
	stale_noted with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "kommune-0301", "data_category": "kopp", "purpose": "settlement", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "kommune-0301", "kind": "municipality"}}, "consents": [], "now_ns": 1814560000000000000}
}

# Issue 15: each part of the handover on its own basis. The residence status: identity, an oral consent suffices.

test_handover_residence_status_with_oral_consent_is_released if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "bv-0301", "data_category": "identity", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "bv-0301", "kind": "barnevern"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["identity"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_handover_residence_status_fields if {
	handover_residence_fields with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "bv-0301", "data_category": "identity", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "bv-0301", "kind": "barnevern"}}, "consents": [{"id": "h1", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["identity"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# The health summary needs written consent (K2): an oral one withholds it.

test_handover_health_summary_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "hs-0301", "data_category": "health", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "hs-0301", "kind": "health"}}, "consents": [{"id": "h2", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["health"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_handover_health_summary_with_written_consent_is_released if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "hs-0301", "data_category": "health", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "hs-0301", "kind": "health"}}, "consents": [{"id": "h3", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["health"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# The KOPP summary needs written consent (bvl § 5A-6).

test_handover_kopp_summary_with_oral_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "bufetat-ost", "recipient_unit": "bv-0301", "data_category": "kopp", "purpose": "handover", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bufetat-ost", "kind": "bufetat_region"}, "recipient": {"id": "bv-0301", "kind": "barnevern"}}, "consents": [{"id": "h4", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["kopp"], "source_units": [], "source_sectors": ["bufetat_region"], "recipient_units": [], "recipient_sectors": ["barnevern"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# The school history: the representative consents under 16 (K3).

test_handover_school_history_under_16_by_the_representative_is_released if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "centre-a", "recipient_unit": "school-0301", "data_category": "school", "purpose": "handover", "break_the_glass": false}, "child": {"age": 13, "age_estimated": false}, "units": {"source": {"id": "centre-a", "kind": "care_centre"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [{"id": "h5", "grantor_role": "representative", "form": "oral", "document_hashed": false, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["school"], "source_units": [], "source_sectors": ["care_centre"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["handover"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

# Issue 15: feedback on a referral comes back on the consent captured at the referral (K4: health to school always needs consent).

test_referral_feedback_from_bup_to_school_with_written_consent_is_released if {
	share.allow with input as {"request": {"case_id": "c1", "source_unit": "bup-a", "recipient_unit": "school-0301", "data_category": "health", "purpose": "referral_feedback", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bup-a", "kind": "health"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [{"id": "f1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["referral_feedback"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_referral_feedback_fields if {
	referral_feedback_fields with input as {"request": {"case_id": "c1", "source_unit": "bup-a", "recipient_unit": "school-0301", "data_category": "health", "purpose": "referral_feedback", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bup-a", "kind": "health"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [{"id": "f1", "grantor_role": "representative", "form": "written", "document_hashed": true, "valid_from_ns": 1777408000000000000, "valid_to_ns": 1805920000000000000, "child_heard": {"status": "heard", "objected": false}, "scope": [{"categories": ["health"], "source_units": [], "source_sectors": ["health"], "recipient_units": [], "recipient_sectors": ["school"], "purposes": ["referral_feedback"]}], "refusals": []}], "now_ns": 1780000000000000000}
}

test_referral_feedback_from_bup_without_consent_is_withheld if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "bup-a", "recipient_unit": "school-0301", "data_category": "health", "purpose": "referral_feedback", "break_the_glass": false}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bup-a", "kind": "health"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

# Barnevern tells a public reporter whether the report is investigated, by law and nothing more.

test_barnevern_feedback_to_a_public_reporter_by_statute if {
	basis_is_report_feedback with input as {"request": {"case_id": "c1", "source_unit": "bv-0301", "recipient_unit": "school-0301", "data_category": "barnevern", "purpose": "referral_feedback", "break_the_glass": false, "claimed_basis": "bvl-melder"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bv-0301", "kind": "barnevern"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_barnevern_feedback_by_statute_releases_only_whether_investigated if {
	barnevern_feedback_fields_only with input as {"request": {"case_id": "c1", "source_unit": "bv-0301", "recipient_unit": "school-0301", "data_category": "barnevern", "purpose": "referral_feedback", "break_the_glass": false, "claimed_basis": "bvl-melder"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bv-0301", "kind": "barnevern"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}

test_barnevern_feedback_statute_does_not_cover_health_data if {
	not share.allow with input as {"request": {"case_id": "c1", "source_unit": "bv-0301", "recipient_unit": "school-0301", "data_category": "health", "purpose": "referral_feedback", "break_the_glass": false, "claimed_basis": "bvl-melder"}, "child": {"age": 12, "age_estimated": false}, "units": {"source": {"id": "bv-0301", "kind": "barnevern"}, "recipient": {"id": "school-0301", "kind": "school"}}, "consents": [], "now_ns": 1780000000000000000}
}
