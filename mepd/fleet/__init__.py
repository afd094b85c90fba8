"""Fleet mode on NATS JetStream: edges publish what they stored, centrals read it into their own stores.

`connection` holds one client connection and its state, `streams` creates or checks the
streams, `wire` is the JSON shape on them, `publisher` the edge's component, `consumer`
the central's, `incidents` both halves for incident state changes, `api` the control
API's view of the nodes' incidents (`mepctl incidents --node`; `mepctl fleet status`
reads the central's status details).
"""
