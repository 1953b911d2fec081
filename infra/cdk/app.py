#!/usr/bin/env python3
"""CDK entry point (``cdk.json``: ``"app"``). See ``gatekeeper_cdk/app_factory.py``."""

from gatekeeper_cdk.app_factory import build_app

if __name__ == "__main__":
    app, _ = build_app()
    app.synth()
