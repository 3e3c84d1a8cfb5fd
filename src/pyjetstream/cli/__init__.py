"""The `pyjetstream` operator command; main.py holds the command table, one module per command.

Client commands reach servers only through nats-py (plumbing in common.py). Import from the
modules; nothing is re-exported here, so starting one command loads only what it needs.
"""
