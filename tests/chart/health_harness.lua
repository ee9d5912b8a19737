-- Runs an Argo CD resource health script the way Argo CD does: the object in the global
-- `obj`, the script's return value a table {status=..., message=...}.
--
--   lua5.4 health_harness.lua <health.lua> < object.lua
--   lua5.1 health_harness.lua <health.lua> < object.lua
--
-- Argo CD runs health scripts in gopher-lua, a Lua 5.1 VM; the harness runs under 5.1
-- and 5.4 alike. object.lua is a chunk returning the object as a table, numbers as floats
-- the way Argo CD decodes JSON (tests/chart/argocd.rs writes it). Prints the status on the first
-- line and the message on the rest.
local script = assert(arg[1], "usage: lua health_harness.lua <health.lua> < object.lua")

-- A chunk with its own globals, in 5.1 (setfenv) and 5.2+ (load's env argument).
local function load_in(source, name, env)
  if setfenv then
    local chunk = assert(loadstring(source, name))
    setfenv(chunk, env)
    return chunk
  end
  return assert(load(source, name, "t", env))
end

local function read_file(path)
  local file = assert(io.open(path, "rb"))
  local text = file:read("*a")
  file:close()
  return text
end

local object = load_in(io.read("*a"), "=object", {})()
assert(type(object) == "table", "the object chunk must return a table")

local env = setmetatable({ obj = object }, { __index = _G })
local hs = load_in(read_file(script), "@" .. script, env)()

assert(type(hs) == "table", "the health script returned " .. type(hs) .. ", not a table")
local valid = { Healthy = true, Progressing = true, Degraded = true, Suspended = true, Missing = true, Unknown = true }
assert(valid[hs.status], "the health script returned status " .. tostring(hs.status))
assert(hs.message == nil or type(hs.message) == "string", "message must be a string")
io.write(hs.status, "\n", hs.message or "", "\n")
