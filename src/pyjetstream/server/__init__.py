"""The NATS server on asyncio: connections (client.py), routing and lifecycle (server.py).

Also its options (options.py, conf.py) and authentication (auth.py). JetStream and monitoring
plug in through the server's seams and live in their own packages. Import from the modules;
nothing is re-exported here.
"""
