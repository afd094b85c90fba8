"""Fleet mode on NATS JetStream: edges publish what they stored, centrals read it into their own stores.

`connection` holds one client connection and its state, `streams` creates or checks the
streams, `wire` is the JSON shape on them, `publisher` the edge's component, `consumer`
the central's, `api` the control API's view (`mepctl fleet status`).
"""
