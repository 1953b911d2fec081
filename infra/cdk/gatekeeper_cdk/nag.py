"""cdk-nag 3.x acknowledgements: ``Validations.of(scope).acknowledge(...)`` with reasons."""

from __future__ import annotations

from aws_cdk import Acknowledgment, Validations
from constructs import IConstruct


def acknowledge(scope: IConstruct, rule_id: str, reason: str) -> None:
    """Suppress one finding (``RuleId`` or ``RuleId[FindingId]``) on ``scope`` and below."""
    if len(reason.strip()) < 20:
        raise ValueError(f"{rule_id}: an acknowledgement needs a real reason")
    Validations.of(scope).acknowledge(Acknowledgment(id=rule_id, reason=reason))
