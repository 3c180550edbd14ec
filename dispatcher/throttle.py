"""`Subscription.rate_limit`: deliveries per second to one endpoint, across every worker.

A token bucket per endpoint lives in Redis, so every worker draws from the same one. The
bucket holds a quarter of a second's worth (at least one token): the rate holds over any
window of a second or more. A claim cut short by the bucket waits until a batch of tokens
(up to a bucketful) is due, not the next single token, so a worker held at 20/s claims five
deliveries four times a second instead of one twenty times: waiting on a limit costs a few
rounds a second, whatever the rate. Tokens are taken before the deliveries are claimed; one a
claim could not use is lost, which errs on the slow side, never the fast.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping

from dispatcher.connection import get_redis
from dispatcher.settings import get_settings

MIN_RATE_LIMIT = 1
MAX_RATE_LIMIT = 10_000  # deliveries per second; a receiver faster than this needs no limit

# KEYS[1] bucket; ARGV rate, capacity, now (s), wanted. Returns {granted, wait in ms}: the
# wait is until the rest of what was wanted, up to a bucketful, can be granted at once.
_TAKE = """
local rate = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local wanted = tonumber(ARGV[4])
local state = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(state[1]) or capacity
local at = tonumber(state[2]) or now
tokens = math.min(capacity, tokens + math.max(0, now - at) * rate)
local granted = math.min(wanted, math.floor(tokens))
tokens = tokens - granted
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'at', tostring(now))
redis.call('PEXPIRE', KEYS[1], math.ceil(1000 * capacity / rate) + 1000)
local wait = 0
if granted < wanted then
  local batch = math.min(wanted - granted, capacity)
  wait = math.ceil(1000 * (batch - tokens) / rate)
end
return {granted, wait}
"""


def capacity(rate: int) -> int:
    """The bucket's size for `rate` per second: a quarter of a second's worth, at least one."""
    return max(1, math.ceil(rate / 4))


def take(wanted: Mapping[str, tuple[int, int]]) -> dict[str, tuple[int, float]]:
    """For each subscription id → (rate, how many it would send), take up to that many tokens.

    Returns id → (granted, seconds until a batch of the rest is due when fewer were granted).
    One pipelined round trip for all of them."""
    if not wanted:
        return {}
    connection = get_redis()
    prefix = get_settings().queue_prefix
    script = connection.register_script(_TAKE)
    now = time.time()
    with connection.pipeline(transaction=False) as pipe:
        for subscription_id, (rate, count) in wanted.items():
            script(
                keys=[f"{prefix}:rate:{subscription_id}"],
                args=[rate, capacity(rate), f"{now:.6f}", count],
                client=pipe,
            )
        answers = pipe.execute()
    return {
        subscription_id: (int(granted), int(wait_ms) / 1000)
        for subscription_id, (granted, wait_ms) in zip(wanted, answers, strict=True)
    }
