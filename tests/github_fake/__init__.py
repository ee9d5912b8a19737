"""A fake GitHub REST API for the integration tests (see README.md)."""
