"""Redis Lua scripts as files: each app keeps its scripts in its own `lua/` folder.

A LuaScript is read once and sent with EVALSHA; only when the server answers NOSCRIPT
(first use on this server, or after a restart or SCRIPT FLUSH) is the source sent once
with EVAL, which also caches it there. Unlike redis-py's `register_script`, a
LuaScript is not tied to a client, so any caller can pass its own client.
"""

import hashlib
from pathlib import Path

from redis.exceptions import NoScriptError


class LuaScript:
    def __init__(self, path):
        path = Path(path)
        self.name = path.name
        self.source = path.read_text(encoding="utf-8")
        self.sha = hashlib.sha1(self.source.encode("utf-8")).hexdigest()  # noqa: S324 - Redis names scripts by SHA-1

    def __call__(self, client, keys, args):
        try:
            return client.evalsha(self.sha, len(keys), *keys, *args)
        except NoScriptError:
            return client.eval(self.source, len(keys), *keys, *args)

    def __repr__(self):
        return f"<LuaScript {self.name} {self.sha[:8]}>"
