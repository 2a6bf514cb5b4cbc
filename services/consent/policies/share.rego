# METADATA
# title: Share decisions under taushetsplikt (entry point)
# description: >
#   A flow is allowed only on a usable consent that no refusal overrides, a statute that
#   applies, or a permitted break-the-glass; and only with the fields its purpose needs.
#   Stale policy data withholds everything. Input format: docs/decisions/0006.
package ema.share

import rego.v1

import data.ema.consent
import data.ema.minimise
import data.ema.statute

legal := data.legal

stale if not legal.valid_until

stale if input.now_ns >= time.parse_rfc3339_ns(legal.valid_until)

consent_ids := sort([id | some id in consent.usable])

statute_ids := sort([id | some id in statute.applicable])

consent_basis if {
	count(consent_ids) > 0
	not consent.refused
}

statute_basis if {
	not consent_basis
	count(statute_ids) > 0
}

glass_basis if {
	not consent_basis
	not statute_basis
	statute.glass
}

default basis := null

basis := {"kind": "consent", "id": consent_ids[0], "ref": "samtykke", "verify": false} if consent_basis

basis := {"kind": "statute", "id": id, "ref": s.ref, "verify": s.verify} if {
	statute_basis
	id := statute_ids[0]
	s := legal.statutes[id]
}

basis := {"kind": "break_the_glass", "id": "break-the-glass", "ref": legal.break_the_glass.ref, "verify": true} if glass_basis

has_basis if consent_basis

has_basis if statute_basis

has_basis if glass_basis

default allow := false

allow if {
	not stale
	has_basis
	count(minimise.fields) > 0
}

default obligations := []

obligations := legal.statutes[basis.id].obligations if {
	allow
	statute_basis
}

obligations := legal.break_the_glass.obligations if {
	allow
	glass_basis
}

default legal_basis := null

legal_basis := sprintf("%s:%s", [basis.kind, basis.id]) if allow

reasons contains "policy data is stale or has no validity date: withhold until it is renewed" if stale

reasons contains "no usable consent, statute or permitted break-the-glass covers this flow (K7)" if not has_basis

reasons contains msg if {
	some msg in consent.reasons
}

reasons contains msg if {
	some msg in statute.reasons
}

reasons contains msg if {
	some msg in minimise.reasons
}

reasons contains sprintf("allowed on %s %s (%s)", [basis.kind, basis.id, basis.ref]) if allow

reasons contains "released under break-the-glass despite a refusal: must be reviewed" if {
	allow
	glass_basis
	consent.refused
}

reasons contains sprintf("%s is in the strict confidentiality tier (K5)", [input.request.data_category]) if {
	input.request.data_category in legal.strict_tier
}

reason_nb := "Opplysningene ble delt fordi det finnes et gyldig samtykke for akkurat denne delingen." if {
	allow
	consent_basis
}

reason_nb := sprintf("Opplysningene ble delt uten samtykke fordi loven krever eller tillater det: %s.", [legal.statutes[basis.id].title_nb]) if {
	allow
	statute_basis
}

reason_nb := "Opplysningene ble delt i en nødsituasjon. Delingen blir kontrollert, og representanten får beskjed." if {
	allow
	glass_basis
}

reason_nb := "Opplysningene ble ikke delt. Det finnes ikke samtykke eller lovhjemmel som dekker denne delingen." if not allow

decision := {
	"allow": allow,
	"fields": fields,
	"legal_basis": legal_basis,
	"basis": basis,
	"obligations": obligations,
	"reasons": reasons,
	"reason_nb": reason_nb,
	"data_version": object.get(legal, "data_version", "unknown"),
}

fields := minimise.fields if allow

fields := [] if not allow
