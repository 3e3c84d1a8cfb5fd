"""Client-compatibility tests: nats.go and the @nats-io JavaScript clients against pyjetstream and
nats-server side by side (see docs/compat.md). A package so the test modules can share helpers."""
