"""SNMP interface polling, MRTG-style: the sessions (v2c codec, v3 through pysnmp), IF-MIB interfaces,
the per-target poll loop, the counters kept across restarts, and `mepctl snmp discover`."""
