"""The team service: the authenticated HTTP API, sign-in and authorization, and the approval page.

It starts and follows deployments through Temporal exactly as the CLI does (the contract and the client's helpers),
so the worker cannot tell a deployment started over HTTP from one started by ``starter.py``.
"""
