"""The Gatekeeper CDK app: the suite's stack and the reusable ``GatekeeperAuthorizer``."""

from gatekeeper_cdk.authorizer_construct import GatekeeperAuthorizer
from gatekeeper_cdk.mtls_domain import MutualTlsDomain
from gatekeeper_cdk.stack import GatekeeperSettings, GatekeeperStack

__all__ = ["GatekeeperAuthorizer", "GatekeeperSettings", "GatekeeperStack", "MutualTlsDomain"]
