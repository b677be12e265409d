"""What operators see: health endpoints, metrics, logs, runtime tuning."""
