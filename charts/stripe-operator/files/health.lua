-- Argo CD health check for the stripe-operator billing kinds: Customer, Product, Price, Subscription, Coupon and
-- PromotionCode (billing.stripe-operator.io/v1). One script serves the six kinds; config/argocd/kustomization.yaml
-- installs it in argocd-cm under resource.customizations.health.billing.stripe-operator.io_<Kind>.
--
-- It reads the kstatus conditions the operator writes (api/v1/common_types.go), so Argo CD agrees with kstatus
-- (Flux, kubectl wait), plus the Subscription's PaymentFailed condition, which kstatus does not know:
--
--   being deleted                           Progressing, or Degraded if the deletion is Stalled
--   no status or no conditions yet          Progressing
--   Stalled=True (for the current spec)     Degraded: a person must act; the message says what Stripe said
--   PaymentFailed=True                      Degraded: the latest payment failed, whatever the spec generation
--   Reconciling=True                        Progressing: work in flight (creating, rate limited, retrying, ...)
--   status.observedGeneration behind        Progressing: the operator has not reached an outcome for this spec
--   Ready=True                              Healthy
--   anything else                           Progressing
--
-- Argo CD passes the object as the global obj and reads the returned table {status = ..., message = ...}.

local function condition(conditions, name)
  if conditions == nil then
    return nil
  end
  for _, c in ipairs(conditions) do
    if c.type == name then
      return c
    end
  end
  return nil
end

local function isTrue(c)
  return c ~= nil and c.status == "True"
end

-- "Reason: message", or whichever of the two is set.
local function describe(c)
  local reason = c.reason or ""
  local message = c.message or ""
  if reason ~= "" and message ~= "" then
    return reason .. ": " .. message
  end
  if message ~= "" then
    return message
  end
  return reason
end

local metadata = obj.metadata or {}
local status = obj.status or {}
local conditions = status.conditions
local generation = metadata.generation or 0
local observed = status.observedGeneration or 0
-- The operator moves status.observedGeneration when a generation reached an outcome (Ready or Stalled).
local current = observed >= generation

local ready = condition(conditions, "Ready")
local reconciling = condition(conditions, "Reconciling")
local stalled = condition(conditions, "Stalled")
local paymentFailed = condition(conditions, "PaymentFailed")

if metadata.deletionTimestamp ~= nil then
  -- Deletion bumps the generation, so a Stalled condition from before the deletion is not current.
  if isTrue(stalled) and current then
    return { status = "Degraded", message = "Deletion stalled: " .. describe(stalled) }
  end
  if isTrue(reconciling) and (reconciling.message or "") ~= "" then
    return { status = "Progressing", message = "Pending deletion: " .. reconciling.message }
  end
  return { status = "Progressing", message = "Pending deletion" }
end

if conditions == nil or #conditions == 0 then
  return { status = "Progressing", message = "Waiting for the operator to report status" }
end

if isTrue(stalled) and current then
  return { status = "Degraded", message = describe(stalled) }
end

-- A failed payment is a fact from Stripe, not an outcome of the spec: report it even while a new spec is reconciled.
if isTrue(paymentFailed) then
  return { status = "Degraded", message = describe(paymentFailed) }
end

if isTrue(reconciling) then
  return { status = "Progressing", message = describe(reconciling) }
end

if not current then
  return {
    status = "Progressing",
    message = "Waiting for the operator to reconcile generation " .. tostring(generation) ..
      " (observed " .. tostring(observed) .. ")",
  }
end

if isTrue(ready) then
  local message = ready.message or ""
  if message == "" then
    message = "Ready"
  end
  return { status = "Healthy", message = message }
end

if ready ~= nil then
  return { status = "Progressing", message = describe(ready) }
end
return { status = "Progressing", message = "Waiting for the Ready condition" }
