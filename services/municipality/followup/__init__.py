"""After the centre: the handover at settlement, the municipality's follow-up of the child to
adulthood, referrals between its services and the coordinating service (issue 15)."""
