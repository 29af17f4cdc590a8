"""Small applications the integration tests run, in-process and as separate processes."""
