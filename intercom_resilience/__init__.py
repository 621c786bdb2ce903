"""intercom-resilience (public API curated in a later commit)."""
