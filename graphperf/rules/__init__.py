"""Cost rules, one op family per module; importing this package registers them all."""

from .registry import FREE, Rule, is_free, register, registered, rule_for

__all__ = ["FREE", "Rule", "is_free", "register", "registered", "rule_for"]
