-- Argo CD health of a WordPressEnvironment (bbws.io/v1alpha1), read from the status the
-- wpenv-operator writes: status.phase, status.observedGeneration and status.conditions
-- (the summary condition "Ready" and the "Rollout" condition of image updates).
-- Only the base and table libraries are used: argocd-cm scripts run without string/math.
local hs = {}

local function findCondition(status, conditionType)
  if status.conditions == nil then
    return nil
  end
  for _, condition in ipairs(status.conditions) do
    if condition.type == conditionType then
      return condition
    end
  end
  return nil
end

-- The condition's message when it has one, so Argo CD shows the operator's own words.
local function messageOf(condition, fallback)
  if condition ~= nil and condition.message ~= nil and condition.message ~= "" then
    return condition.message
  end
  return fallback
end

local function waitingForGeneration()
  hs.status = "Progressing"
  if obj.metadata ~= nil and obj.metadata.generation ~= nil then
    hs.message = "Waiting for the operator to observe generation " .. tostring(obj.metadata.generation)
  else
    hs.message = "Waiting for the operator to observe the resource"
  end
  return hs
end

local status = obj.status
if status == nil then
  return waitingForGeneration()
end
-- A status written for an older spec says nothing about the current one.
if status.observedGeneration == nil then
  return waitingForGeneration()
end
if obj.metadata ~= nil and obj.metadata.generation ~= nil
    and status.observedGeneration < obj.metadata.generation then
  return waitingForGeneration()
end

local phase = status.phase
local ready = findCondition(status, "Ready")

if phase == "Active" then
  -- Checked before Ready: after a rollback the old image serves fine (Ready is True),
  -- but the update the user asked for did not happen, and Argo CD must say so.
  local rollout = findCondition(status, "Rollout")
  if rollout ~= nil and rollout.reason == "RolledBack" then
    hs.status = "Degraded"
    hs.message = messageOf(rollout, "The image update failed and was rolled back")
    return hs
  end
  -- A change onto a route another environment holds: refused, and it stays refused.
  if ready ~= nil and ready.reason == "RouteInUse" then
    hs.status = "Degraded"
    hs.message = messageOf(ready, "The route is in use by another environment")
    return hs
  end
  if ready ~= nil and ready.status == "True" then
    hs.status = "Healthy"
    hs.message = messageOf(ready, "The WordPress environment is active")
    return hs
  end
  hs.status = "Progressing"
  hs.message = messageOf(ready, "Waiting for the WordPress environment to become ready")
  return hs
end

if phase == "Suspended" then
  hs.status = "Suspended"
  hs.message = messageOf(ready, "The WordPress environment is suspended")
  return hs
end

if phase == "Failed" then
  hs.status = "Degraded"
  hs.message = messageOf(ready, "The WordPress environment failed")
  return hs
end

local progressing = {
  PendingProvisioning = "Waiting to be provisioned",
  Provisioning = "Provisioning the WordPress environment",
  PendingDeprovision = "Waiting to be deprovisioned",
  Deprovisioned = "The WordPress environment is deprovisioned",
}
if phase ~= nil and progressing[phase] ~= nil then
  hs.status = "Progressing"
  hs.message = messageOf(ready, progressing[phase])
  return hs
end

if phase == nil then
  hs.status = "Progressing"
  hs.message = "Waiting for the operator to report a phase"
  return hs
end

-- A phase this script does not know (a newer operator): do not guess.
hs.status = "Unknown"
hs.message = "Unknown phase " .. tostring(phase)
return hs
