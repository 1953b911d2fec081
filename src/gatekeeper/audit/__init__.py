"""Audit events: one per decision, never holding a credential."""
