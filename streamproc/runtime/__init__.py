"""The streaming runtime: deployments, per-frame analysis, tracking, events."""
