"""The privacy officer's audit: pages under /audit and `emaflyt audit` (docs/decisions/0009)."""
