"""Storage: the config table (RBAC, keys) and, later, the counters table."""
