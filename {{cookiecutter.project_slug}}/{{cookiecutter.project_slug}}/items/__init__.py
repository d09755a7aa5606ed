"""The example app: one model, a JSON endpoint, a readiness check. Copy its shape."""
