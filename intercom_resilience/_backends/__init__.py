"""Where the limiter's and the cache's state lives: this process (``memory``) or Redis (``redis``).

The pipeline talks to both through the small protocols in :mod:`.base`; each backend offers a sync
and an async twin of every method so the sync and async shells can share one core.
"""
