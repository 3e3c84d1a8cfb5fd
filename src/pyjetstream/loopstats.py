"""Activity counters shared by parts of the server that must not import each other.

Owns `reads`: how many times a client connection (any kind) has been handed data by the event
loop since the process started. The server's connections count; the file store reads it to
tell a lone publisher (one read between two of its commits: its own PUB) from a server with
other clients at work, before it syncs on the loop thread (store/file.py, _do_commit).
Holds no behaviour and imports nothing, so importing it costs nothing at start-up.
"""

reads = 0
