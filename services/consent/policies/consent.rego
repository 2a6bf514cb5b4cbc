# METADATA
# title: Consents that cover a share request (K1-K3, K6, K8)
# description: >
#   A consent covers a request when one of its scope flows matches category, source,
#   recipient and purpose. It is usable when it is in force, was given by who may give it
#   at the child's age (K3), has the form the category needs (K1/K2), and the child was
#   heard (K8). A refusal of a matching flow beats any consent (K6).
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

# K3: who may consent follows the child's age at the time of the decision.
may_grant(c) if {
	input.child.age < legal.health_consent_age
	c.grantor_role in legal.grantors.under_16
}

may_grant(c) if {
	input.child.age >= legal.health_consent_age
	req.data_category == "health"
	c.grantor_role in legal.grantors.from_16_health
}

may_grant(c) if {
	input.child.age >= legal.health_consent_age
	req.data_category != "health"
	c.grantor_role in legal.grantors.from_16_other
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

reasons contains msg if {
	some c in covering
	not may_grant(c)
	msg := sprintf(
		"consent %s was given by the %s; for %s data at age %d it must come from %s (K3)",
		[c.id, c.grantor_role, req.data_category, input.child.age, who_may_grant],
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

default who_may_grant := "the representative or guardian"

who_may_grant := "the young person" if {
	input.child.age >= legal.health_consent_age
	req.data_category == "health"
}
