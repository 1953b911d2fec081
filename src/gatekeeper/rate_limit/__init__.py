"""Rate limits on atomic DynamoDB counters, and brute-force blocking."""
