"""JetStream: streams, consumers and their API on top of the core server.

The manager (`pyjetstream.jetstream.manager.JetStream`) is the entry point the server uses;
this package file imports nothing, so that importing one submodule (errors, schemas) never
drags in the rest.
"""
