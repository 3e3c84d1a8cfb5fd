"""The nats-server release this server answers as: its INFO, /varz and `--version` name it.

Its own module so that the server, the monitor and the CLI read it without importing each
other. Holds a constant only.
"""

VERSION = "2.12.4"
