"""Gatekeeper: API authorization for AWS API Gateway.

JWT and API-key identities, RBAC, rate limits and audit, shared by the suite's Lambda functions.
"""

__version__ = "0.1.0"
