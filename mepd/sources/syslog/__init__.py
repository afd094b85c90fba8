"""Syslog intake: parsing (RFC 5424, RFC 3164 and device variants) and the listeners."""
