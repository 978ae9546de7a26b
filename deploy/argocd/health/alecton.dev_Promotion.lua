-- Argo CD health of an alecton Promotion (promotions.alecton.dev): a version change the
-- operator proposed for a Deployment. Argo CD runs this with `obj`, the whole object as a
-- table (absent fields are nil). Plain Lua 5.1, base and string functions only.
-- The states are reconcile/promotion_records.py's; docs/design.md has the mapping.

local function health(obj)
  local spec = obj.spec or {}
  local status = obj.status or {}
  local approval = spec.approval
  local state = status.state
  local message = status.message
  local version = tostring(spec.toVersion)
  if state == nil or state == "" then
    state = "Pending" -- the operator has not written a state yet
  end
  if state == "Pending" then
    if approval ~= nil then
      -- A decision is recorded in the spec; the operator has not acted on it yet.
      return "Progressing", "version " .. version .. " is " .. string.lower(tostring(approval.decision))
        .. " by " .. tostring(approval.by or "someone") .. "; waiting for the operator to act on it"
    end
    -- The operator's message says why the version qualified; say what to do first.
    local ask = "version " .. version .. " waits for approval: alecton approve "
      .. tostring(spec.application) .. " " .. tostring(spec.target) .. " --version " .. version
    if message ~= nil and message ~= "" then
      ask = ask .. " (" .. message .. ")"
    end
    return "Suspended", ask
  end
  message = message or state
  if state == "Approved" then
    return "Suspended", message -- approved, waiting for a deploy window or the end of a freeze
  end
  if state == "Applied" or state == "Superseded" or state == "Rejected" then
    -- Final, and nothing is wrong: the version went out, something newer won, or a person said no.
    return "Healthy", state .. ": " .. message
  end
  if state == "Failed" then
    return "Degraded", message
  end
  return "Unknown", "unknown state " .. tostring(state) .. ": " .. message
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
