"""Sources: everything that produces LogRecords or Samples; they never import stores."""
