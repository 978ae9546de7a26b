-- Argo CD health of an alecton Image (images.alecton.dev): a built image CI recorded.
-- An Image is immutable and needs nothing from the operator: Healthy, unless a condition
-- written for it (verification, for one) says otherwise. Argo CD runs this with `obj`, the
-- whole object as a table (absent fields are nil). Plain Lua 5.1, base functions only.

-- Conditions whose True is good, and those whose True is bad (kstatus conventions); others
-- (Reconciling, Drifted...) tell nothing about health.
local good_when_true = {Ready = true, Verified = true}
local bad_when_true = {Stalled = true}

local function health(obj)
  local spec = obj.spec or {}
  local status = obj.status or {}
  local generation = (obj.metadata or {}).generation
  local waiting = nil
  for _, c in ipairs(status.conditions or {}) do
    local what = tostring(c.type) .. ": " .. tostring(c.message or c.reason or c.status)
    local counted = good_when_true[c.type] or bad_when_true[c.type]
    if not counted then
      -- nothing to say about health
    elseif c.observedGeneration ~= nil and generation ~= nil and c.observedGeneration ~= generation then
      waiting = waiting or ("not checked yet (" .. what .. ")")
    elseif (good_when_true[c.type] and c.status == "False") or (bad_when_true[c.type] and c.status == "True") then
      return "Degraded", what
    elseif c.status == "Unknown" then
      waiting = waiting or what
    end
  end
  if waiting ~= nil then
    return "Progressing", waiting
  end
  return "Healthy", tostring(spec.name) .. " " .. tostring(spec.version) .. " is " .. tostring(spec.image)
end

local hs = {}
hs.status, hs.message = health(obj)
return hs
