"""The web console: streams, consumers, Subscriptions and dead letters in a browser, live.

A NATS client like the CLI (nats-py only, so it works against nats-server and clusters too).
`settings` holds what it is started with, `data` reads and changes JetStream, `sampler` polls
once a second for the live views and charts, `security` is the access gate (token or NATS
credentials, CSRF, headers), `app` the aiohttp routes and views, `server` start and stop.
"""

from pyjetstream.console.server import Console, run_console
from pyjetstream.console.settings import ConsoleAuth, ConsoleSettings

__all__ = ["Console", "ConsoleAuth", "ConsoleSettings", "run_console"]
