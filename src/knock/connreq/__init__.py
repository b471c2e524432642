"""Connection requests: one module per transport, and the dispatcher that picks, sends, confirms."""
