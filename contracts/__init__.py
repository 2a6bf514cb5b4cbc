"""The wire contract of emaflyt: envelope, subjects, message models. Imports no service."""

from contracts.envelope import HEADER_KEY_ID, HEADER_MSG_ID, HEADER_SIGNATURE, CloudEvent
from contracts.registry import CONTRACTS, STREAMS, Contract, contract_for_type

__all__ = [
    "CONTRACTS",
    "HEADER_KEY_ID",
    "HEADER_MSG_ID",
    "HEADER_SIGNATURE",
    "STREAMS",
    "CloudEvent",
    "Contract",
    "contract_for_type",
]
