"""The admin service: one implementation of every configuration change, used by the admin API
(``functions/admin``) and the CLI alike. Every change is a conditional write that bumps the
config version and emits an :class:`~gatekeeper.admin.audit.AdminChangeEvent`."""
