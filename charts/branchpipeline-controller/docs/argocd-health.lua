-- Argo CD health check for branchpipeline.dev/BranchPipeline, for the argocd-cm key
-- resource.customizations.health.branchpipeline.dev_BranchPipeline (docs/argocd-cm.yaml).
--
-- Argo CD runs this with gopher-lua (Lua 5.1); tests/chart/ runs it with Lua 5.4. It
-- sticks to what both share. The status it reads, written only by the controller:
--   status.observedGeneration
--   status.conditions[] {type, status, reason, message, lastTransitionTime, observedGeneration}
-- with condition types Ready and Synced.
--
--   Healthy      Ready=True for the current generation, and no retry pending
--   Progressing  no status yet; generation not yet observed; Ready missing, Unknown or
--                False with reason Progressing (or any reason not listed below);
--                Synced=False with reason AWSError (a retryable AWS failure the
--                controller is backing off from) while Ready is not False;
--                Synced=False with reason UpdatePending (a pipeline update waits for
--                running executions, see spec.updatePolicy) while Ready is not False
--   Degraded     Ready=False with reason InvalidSpec, NotOwned, AWSTerminalError, or a
--                class problem (PolicyViolation, InvalidClass, ClassNotFound,
--                AmbiguousDefaultClass):
--                waiting will not fix these, a spec or AWS-side change will
local hs = {}

local terminal = {
  InvalidSpec = true, NotOwned = true, AWSTerminalError = true,
  PolicyViolation = true, InvalidClass = true, ClassNotFound = true, AmbiguousDefaultClass = true,
}

local function condition(conditions, type_)
  for _, c in ipairs(conditions) do
    if c.type == type_ then
      return c
    end
  end
  return nil
end

local function text(value, fallback)
  if value == nil or value == "" then
    return fallback
  end
  return tostring(value)
end

local function generation_text(value)
  if value == nil then
    return "none"
  end
  return string.format("%d", value)
end

local status = obj.status
if status == nil or status.conditions == nil or #status.conditions == 0 then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to report status"
  return hs
end

local generation = obj.metadata and obj.metadata.generation
local observed = status.observedGeneration
if generation ~= nil and (observed == nil or observed < generation) then
  hs.status = "Progressing"
  hs.message = "Waiting for the controller to observe generation " .. generation_text(generation)
    .. " (observed " .. generation_text(observed) .. ")"
  return hs
end

local ready = condition(status.conditions, "Ready")
local synced = condition(status.conditions, "Synced")

if ready == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the Ready condition"
  return hs
end

if ready.status == "False" and terminal[ready.reason] then
  hs.status = "Degraded"
  hs.message = ready.reason .. ": " .. text(ready.message, "no message")
  return hs
end

if ready.status ~= "False" and synced ~= nil and synced.status ~= "True" and synced.reason == "AWSError" then
  hs.status = "Progressing"
  hs.message = "Retrying after a retryable AWS error: " .. text(synced.message, "no message")
  return hs
end

if ready.status ~= "False" and synced ~= nil and synced.status ~= "True" and synced.reason == "UpdatePending" then
  hs.status = "Progressing"
  hs.message = "Waiting for running executions: " .. text(synced.message, "no message")
  return hs
end

if ready.status == "True" then
  hs.status = "Healthy"
  hs.message = text(ready.message, "Ready")
  return hs
end

hs.status = "Progressing"
hs.message = text(ready.reason, "Unknown") .. ": " .. text(ready.message, "waiting for the controller")
return hs
