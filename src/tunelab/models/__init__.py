"""Model resolution, loading and anatomy (which modules are blocks, head, final norm)."""
