"""The Redis lock's Lua scripts (locks/lua/lock_*.lua)."""

from pathlib import Path

from core.lua import LuaScript

_LUA = Path(__file__).resolve().parent / "lua"

ACQUIRE = LuaScript(_LUA / "lock_acquire.lua")
RELEASE = LuaScript(_LUA / "lock_release.lua")
EXTEND = LuaScript(_LUA / "lock_extend.lua")
FENCE_SEED = LuaScript(_LUA / "lock_fence_seed.lua")
FENCE_ISSUE = LuaScript(_LUA / "lock_fence_issue.lua")
