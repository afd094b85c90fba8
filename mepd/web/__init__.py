"""The dashboard: MRTG's pages and more, served live over HTTP and exported as static files."""
