# METADATA
# title: Share decisions under taushetsplikt
# description: >
#   Entry point for every share request. A flow is allowed only on a recorded consent or a
#   named statute; anything else is withheld. Consent records and statutes (issue 4) will
#   add rules here; until they exist, nothing allows a flow.
# related_resources:
#   - ref: ../../../../shared/design/DOMAIN.md (K1-K11)
package ema.share

import rego.v1

default allow := false

withheld_reason := "Ingen registrert samtykke eller lovhjemmel dekker denne delingen."

reasons contains "no recorded consent or statutory basis covers this flow" if not allow

decision := {
	"allow": allow,
	"fields": [],
	"legal_basis": null,
	"reasons": reasons,
	"reason_nb": withheld_reason,
}
