-- Argo CD health of an alecton Deployment (deployments.alecton.dev).
-- Argo CD runs this with `obj`, the whole object as a table (absent fields are nil), and
-- reads back {status = ..., message = ...}. Plain Lua 5.1, base and string functions only.
-- What each phase means is docs/design.md's "Reconciling a Deployment"; the mapping and
-- its reasons are in docs/design.md ("Health in Argo CD").

local function condition(status, kind, generation)
  -- A condition counts only if it was written for the spec as it is now.
  if status.conditions == nil then
    return nil
  end
  for _, c in ipairs(status.conditions) do
    if c.type == kind and (c.observedGeneration == nil or c.observedGeneration == generation) then
      return c
    end
  end
  return nil
end

local function said(status, fallback)
  if status.message ~= nil and status.message ~= "" then
    return status.message
  end
  return fallback
end

local function health(obj)
  local spec = obj.spec or {}
  local status = obj.status
  local generation = (obj.metadata or {}).generation
  if status == nil or status.phase == nil then
    return "Progressing", "waiting for the alecton operator to reconcile this Deployment"
  end
  if generation ~= nil and status.observedGeneration ~= generation then
    local seen = "none"
    if status.observedGeneration ~= nil then
      seen = tostring(status.observedGeneration)
    end
    return "Progressing", "the alecton operator has not acted on the latest spec yet (generation "
      .. tostring(generation) .. ", status written for " .. seen .. ")"
  end

  local phase = status.phase
  local ready = condition(status, "Ready", generation) or {}
  local message = said(status, phase)

  if ready.reason == "UnexpectedError" then
    -- The operator failed in a way it did not plan for (an API outage, a bug); it retries.
    return "Degraded", "the operator could not reconcile it: " .. message
  end
  if phase == "Deployed" then
    local drifted = condition(status, "Drifted", generation)
    if drifted ~= nil and drifted.status == "True" then
      return "Healthy", message .. "; drift on the target: " .. (drifted.message or "")
    end
    return "Healthy", message
  end
  if phase == "RolledBack" then
    if ready.reason == "RollbackHeld" then
      return "Suspended", message
    end
    if spec.rollback ~= nil then
      return "Healthy", message -- the rollback the spec asks for
    end
    -- Rolled back by the operator: the version in spec.version failed its health check.
    return "Degraded", "version " .. tostring(spec.version) .. " failed and was rolled back: " .. message
  end
  if phase == "Suspended" then
    return "Suspended", message .. " (set spec.suspend to false to resume)"
  end
  if phase == "Pending" then
    if ready.reason == "Frozen" then
      return "Suspended", message
    end
    return "Progressing", message
  end
  if phase == "Deploying" or phase == "RollingBack" then
    return "Progressing", message
  end
  if phase == "Verifying" then
    local checked = status.health or {}
    if checked.message ~= nil and checked.message ~= "" then
      return "Progressing", message .. " (now: " .. checked.message .. ")"
    end
    return "Progressing", message
  end
  if phase == "Deleting" then
    if ready.reason == "UninstallFailed" then
      return "Degraded", message
    end
    return "Progressing", message
  end
  if phase == "Degraded" or phase == "Failed" or phase == "Conflict" then
    return "Degraded", message
  end
  return "Unknown", "unknown phase " .. tostring(phase) .. ": " .. message
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
