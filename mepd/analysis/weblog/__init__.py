"""Web access logs analysed Analog-style: the parser, counts, the file scan, reports, rendering, the live analyser."""
