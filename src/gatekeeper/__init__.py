"""Gatekeeper: API authorization for AWS API Gateway (JWT and API keys, RBAC, rate limits, audit)."""

__version__ = "0.1.0"
