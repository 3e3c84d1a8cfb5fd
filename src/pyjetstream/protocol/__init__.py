"""The NATS client protocol as bytes: the sans-IO parser (parser.py) and header blocks (headers.py).

Pure framing: no sockets, no clock, no subscriptions. Import from the modules themselves;
nothing is re-exported here, so importing the package stays free.
"""
