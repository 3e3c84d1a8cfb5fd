"""The nats-server release this server answers as: its INFO, /varz and `--version` name it.

Its own module so that the server, the monitor and the CLI read it without importing each
other (and a server without JetStream never imports the JetStream package: its modules cost
~1.3 MiB of RSS). Holds constants only.
"""

VERSION = "2.12.4"
# nats-server's JetStream API level: 1 (2.11: TTLs, pause, priority groups) and 2 (2.12.0:
# counters, atomic batches, schedules, async persist) are implemented; 3 (2.12.6+: window_size)
# is not, so 2 is the level we claim (docs/design.md)
JS_API_LEVEL = 2
