"""The Redis online store: Feast's Redis layout, or plain hashes for teams without Feast.

The only package that imports `redis` (`client` is its boundary); `hash_layout` and `layout`
are pure, and Feast's byte layout lives in `monitor.feast.redis_layout`.
"""

from monitor.stores.redis.store import RedisOnlineStore

__all__ = ["RedisOnlineStore"]
