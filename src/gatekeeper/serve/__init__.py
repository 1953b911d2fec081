"""``gatekeeper serve``: a local API Gateway in front of a backend, on the real authorizer."""
