# METADATA
# title: Consents that cover a share request (K1-K3, K6, K8)
# description: >
#   A consent covers a request when one of its scope flows matches category, source,
#   recipient and purpose. It is usable when it is in force, was given by who may give it
#   at the child's age for that category (K3: data.legal.consent_age, with an estimated age
#   near 16 or 18 needing both sides' signatures), has the form the category needs (K1/K2),
#   and the child was heard (K8). A refusal of a matching flow beats any consent (K6).
package ema.consent

import rego.v1

legal := data.legal

req := input.request

matches(flow) if {
	req.data_category in flow.categories
	req.purpose in flow.purposes
	source_matches(flow)
	recipient_matches(flow)
}

source_matches(flow) if input.units.source.id in flow.source_units

source_matches(flow) if input.units.source.kind in flow.source_sectors

recipient_matches(flow) if input.units.recipient.id in flow.recipient_units

recipient_matches(flow) if input.units.recipient.kind in flow.recipient_sectors

# A refusal that names no source (or no recipient) refuses the flow from (or to) anyone.
refusal_matches(flow) if {
	req.data_category in flow.categories
	req.purpose in flow.purposes
	refusal_source_matches(flow)
	refusal_recipient_matches(flow)
}

refusal_source_matches(flow) if source_matches(flow)

refusal_source_matches(flow) if {
	count(flow.source_units) == 0
	count(flow.source_sectors) == 0
}

refusal_recipient_matches(flow) if recipient_matches(flow)

refusal_recipient_matches(flow) if {
	count(flow.recipient_units) == 0
	count(flow.recipient_sectors) == 0
}

in_force(c) if {
	c.valid_from_ns <= input.now_ns
	input.now_ns < c.valid_to_ns
}

# K3: who may consent follows the child's age at the time of the decision, per data category
# (data.legal.consent_age): until 16 the representative or guardian, from 16 the young person
# for health and school matters, from 18 the young person alone (a representative's or
# guardian's role ends at 18). Near a threshold an estimated age decides nothing alone: the
# grantors of both sides must have signed.
ages := legal.consent_age

age_months := object.get(input.child, "age_months", input.child.age * 12)

thresholds := {b.from_age | some b in ages.bands; b.from_age > 0}

band_of(months) := b.band if {
	some b in ages.bands
	months >= b.from_age * 12
	not above_band(months, b.from_age)
}

above_band(months, from_age) if {
	some t in thresholds
	t > from_age
	months >= t * 12
}

# Thresholds within the margin of an estimated age.
uncertain contains t if {
	input.child.age_estimated == true
	some t in thresholds
	abs(age_months - t * 12) < ages.estimated_margin_months
}

possible_bands contains band_of(age_months)

possible_bands contains band_of(t * 12 - 1) if some t in uncertain

possible_bands contains band_of(t * 12) if some t in uncertain

category_grantors := ages.grantors[req.data_category]

category_grantors := ages.grantors["*"] if not ages.grantors[req.data_category]

roles_for(band) := object.get(category_grantors, band, [])

# The role counts in every band the child may be in.
grants_alone(c) if count({b | some b in possible_bands; not c.grantor_role in roles_for(b)}) == 0

# Each band the child may be in is covered by a consent from one of its grantors.
signed_for(band) if {
	some c in covering
	in_force(c)
	form_ok(c)
	heard_ok(c)
	c.grantor_role in roles_for(band)
}

both_sides_signed if count({b | some b in possible_bands; not signed_for(b)}) == 0

may_grant(c) if grants_alone(c)

may_grant(c) if {
	some b in possible_bands
	c.grantor_role in roles_for(b)
	both_sides_signed
}

# K1, K2: KOPP and health results need written consent with the signed document's hash.
form_ok(_) if not req.data_category in legal.written_required

form_ok(c) if {
	c.form == "written"
	c.document_hashed == true
}

# K8: the child was heard, or a refusal to take part is documented.
heard_ok(c) if c.child_heard.status in legal.heard_statuses

covering contains c if {
	some c in input.consents
	some flow in c.scope
	matches(flow)
}

usable contains c.id if {
	some c in covering
	in_force(c)
	may_grant(c)
	form_ok(c)
	heard_ok(c)
}

refusing contains c.id if {
	some c in input.consents
	in_force(c)
	some flow in c.refusals
	refusal_matches(flow)
}

refused if count(refusing) > 0

reasons contains sprintf("consent %s is not in force at the time of the decision (K6)", [c.id]) if {
	some c in covering
	not in_force(c)
}

# The role counts in none of the bands the child may be in.
grants_in_no_band(c) if count({b | some b in possible_bands; c.grantor_role in roles_for(b)}) == 0

reasons contains msg if {
	some c in covering
	grants_in_no_band(c)
	msg := sprintf(
		"consent %s was given by the %s; for %s data at age %d it must come from %s (K3)",
		[c.id, c.grantor_role, req.data_category, input.child.age, who_may_grant],
	)
}

reasons contains sprintf("consent %s: a representative's or guardian's role ends at 18 (K3)", [c.id]) if {
	some c in covering
	grants_in_no_band(c)
	"from_18" in possible_bands
	c.grantor_role in {"representative", "guardian"}
}

reasons contains msg if {
	some t in uncertain
	some c in covering
	not may_grant(c)
	not grants_in_no_band(c)
	msg := sprintf(
		"consent %s: the birth date is estimated and the child is within %d months of %d, so the age cannot decide alone; %s data needs consents from %s and %s (K3)",
		[c.id, ages.estimated_margin_months, t, req.data_category, who(band_of(t * 12 - 1)), who(band_of(t * 12))],
	)
}

reasons contains sprintf("consent %s is not written with a signed document hash; %s data needs written consent (K1/K2)", [c.id, req.data_category]) if {
	some c in covering
	not form_ok(c)
}

reasons contains sprintf("consent %s: the child was not heard and no refusal to take part is documented (K8)", [c.id]) if {
	some c in covering
	not heard_ok(c)
}

reasons contains sprintf("consent %s: the child objected to this sharing; the grantor weighed it (K8)", [c.id]) if {
	some c in covering
	c.child_heard.objected == true
}

reasons contains sprintf("refusal in consent %s covers this flow; a refusal beats any consent (K6)", [id]) if {
	some id in refusing
}

who(band) := "the young person" if roles_for(band) == ["young_person"]

who(band) := "the representative or guardian" if roles_for(band) != ["young_person"]

who_may_grant := who(band_of(age_months))
