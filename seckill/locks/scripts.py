"""The lock's Lua scripts (seckill/lua/lock_*.lua)."""

from seckill.lua import LuaScript

ACQUIRE = LuaScript("lock_acquire.lua")
RELEASE = LuaScript("lock_release.lua")
EXTEND = LuaScript("lock_extend.lua")
FENCE_SEED = LuaScript("lock_fence_seed.lua")
