"""The control API: HTTP+JSON on the Unix control socket, and its client."""
