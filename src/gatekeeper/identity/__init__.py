"""Who is calling: JWT and API-key authentication, both producing a :class:`Principal`."""
